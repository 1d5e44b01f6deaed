"""Shared pieces of the GPIO device kinds: config validators and building gpiozero outputs.

Every gpiozero device is built on the factory the agent chose (``DeviceContext.pin_factory``), so
the same code drives a Raspberry Pi and gpiozero's MockFactory. Failures of the library become
``DeviceError`` messages that name the config key and the pin.
"""

from __future__ import annotations

import math
from typing import Any, Final

import voluptuous as vol

from pi_agent.devices.base import DeviceError

# BCM numbers of the 40-pin header's GPIOs.
MIN_BCM_PIN: Final = 0
MAX_BCM_PIN: Final = 27
SLUG_PATTERN: Final = r"^[a-z0-9_]{1,32}$"
SLUG_RULE: Final = "must be 1-32 characters of lowercase letters, digits or _"


def bcm_pin(value: Any) -> int:
    """A BCM GPIO number of the 40-pin header."""
    # bool is an int in Python; `pin = true` is a mistake, not GPIO1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise vol.Invalid(f"must be a BCM GPIO number ({MIN_BCM_PIN}-{MAX_BCM_PIN}), got {value!r}")
    if not MIN_BCM_PIN <= value <= MAX_BCM_PIN:
        raise vol.Invalid(f"BCM GPIO number must be {MIN_BCM_PIN}-{MAX_BCM_PIN}, got {value}")
    return value


def slug(value: Any) -> str:
    """An id usable in device ids and file names."""
    if not isinstance(value, str):
        raise vol.Invalid(f"must be a string that {SLUG_RULE.removeprefix('must be ')}")
    return str(vol.Match(SLUG_PATTERN, msg=f"{SLUG_RULE}, got {value!r}")(value))


def display_name(value: Any) -> str:
    """A human-readable name: non-empty, at most 64 characters."""
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("must be a non-empty string")
    if len(value) > 64:
        raise vol.Invalid("must be at most 64 characters")
    return value.strip()


def seconds(minimum: float, maximum: float, *, min_included: bool = True) -> Any:
    """A validator for a finite duration in seconds within [minimum, maximum].

    Rejects booleans, NaN and infinities (Python's JSON parser accepts ``NaN``), which a plain
    ``vol.Range`` would let through.
    """
    low = "from" if min_included else "above"

    def validate(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise vol.Invalid(f"must be a number of seconds, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise vol.Invalid("must be a finite number of seconds")
        too_low = number < minimum if min_included else number <= minimum
        if too_low or number > maximum:
            raise vol.Invalid(f"must be {low} {minimum:g} to {maximum:g} seconds, got {number:g}")
        return number

    return validate


def boolean(value: Any) -> bool:
    """A real boolean (TOML and JSON have them): no guessing from 0, 1 or "yes"."""
    if not isinstance(value, bool):
        raise vol.Invalid(f"must be true or false, got {value!r}")
    return value


def build_output(
    pin_factory: Any,
    pin: int,
    *,
    key: str,
    active_high: bool,
    initial_level: float = 0.0,
    pwm_frequency: int | None = None,
) -> Any:
    """Build a gpiozero output on ``pin``: a PWMLED when ``pwm_frequency`` is set, else an LED.

    Both switch with ``on()``/``off()`` and take ``value``; active-low wiring (most relay boards) is
    handled by gpiozero, so callers think in "on" and "off" only. The output starts at
    ``initial_level`` (0..1; above 0 is "on" for a plain output) without passing another level.
    """
    from gpiozero import LED, PWMLED, GPIOZeroError

    try:
        if pwm_frequency is not None:
            return PWMLED(
                pin,
                active_high=active_high,
                initial_value=initial_level,
                frequency=pwm_frequency,
                pin_factory=pin_factory,
            )
        return LED(
            pin,
            active_high=active_high,
            initial_value=initial_level > 0,
            pin_factory=pin_factory,
        )
    except (GPIOZeroError, OSError, ValueError) as err:
        raise DeviceError(f"{key}: cannot use GPIO{pin} as an output: {err}") from err
