"""What a light accepts: its ``[[light]]`` table, and the parameters of each of its actions.

Every value is checked with a message that names the limit, before any pin moves: a bool is not a
brightness, 255.5 is not a whole number, and a fade is at most a minute.
"""

from __future__ import annotations

import math
from typing import Any, Final

import voluptuous as vol
from pi_secure_ws_protocol.devices.light import MAX_BRIGHTNESS, MAX_TRANSITION

from pi_agent.devices.gpio import bcm_pin, boolean, display_name, seconds, slug

DEFAULT_PWM_FREQUENCY: Final = 100
STARTUP_MODES: Final = ("off", "on", "restore")


def _check_lights(lights: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    for index, light in enumerate(lights):
        if light["id"] in seen:
            raise vol.Invalid(f"id {light['id']!r} is used by another light", path=[index, "id"])
        seen.add(light["id"])
        if "pwm_frequency" in light and not light["dimmable"]:
            raise vol.Invalid(
                "only dimmable lights use PWM; remove it or set dimmable = true",
                path=[index, "pwm_frequency"],
            )
        light.setdefault("name", light["id"])
    return lights


def _pwm_frequency(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10000:
        raise vol.Invalid(f"must be a whole number of Hz, 1-10000, got {value!r}")
    return value


_LIGHT_SCHEMA: Final = vol.Schema(
    {
        vol.Required("id"): slug,
        vol.Optional("name"): display_name,
        vol.Required("pin"): bcm_pin,
        vol.Optional("dimmable", default=False): boolean,
        vol.Optional("active_high", default=True): boolean,
        vol.Optional("startup", default="off"): vol.In(
            STARTUP_MODES, msg=f"must be one of: {', '.join(STARTUP_MODES)}"
        ),
        vol.Optional("pwm_frequency"): _pwm_frequency,
    }
)

CONFIG_SCHEMA: Final = vol.Schema(vol.All([_LIGHT_SCHEMA], _check_lights))


def _brightness(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise vol.Invalid(f"must be a whole number 0-{MAX_BRIGHTNESS}, got {value!r}")
    if value != int(value) or not 0 <= value <= MAX_BRIGHTNESS:
        raise vol.Invalid(f"must be a whole number 0-{MAX_BRIGHTNESS}, got {value!r}")
    return int(value)


def _peak_brightness(value: Any) -> int:
    brightness = _brightness(value)
    if brightness == 0:
        raise vol.Invalid(f"must be a whole number 1-{MAX_BRIGHTNESS} for an effect, got 0")
    return brightness


def _count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100000:
        raise vol.Invalid(
            f"must be a whole number 1-100000, or null to repeat forever; got {value!r}"
        )
    return value


_TRANSITION: Final = seconds(0.0, MAX_TRANSITION)
_EFFECT_TIME: Final = seconds(0.0, 3600.0, min_included=False)

TURN_ON_SCHEMA: Final = vol.Schema(
    {vol.Optional("brightness"): _brightness, vol.Optional("transition"): _TRANSITION}
)
TRANSITION_SCHEMA: Final = vol.Schema({vol.Optional("transition"): _TRANSITION})
BLINK_SCHEMA: Final = vol.Schema(
    {
        vol.Optional("on_time", default=1.0): _EFFECT_TIME,
        vol.Optional("off_time", default=1.0): _EFFECT_TIME,
        vol.Optional("count", default=None): _count,
        vol.Optional("brightness"): _peak_brightness,
    }
)
PULSE_SCHEMA: Final = vol.Schema(
    {
        vol.Optional("fade_in", default=1.0): _EFFECT_TIME,
        vol.Optional("fade_out", default=1.0): _EFFECT_TIME,
        vol.Optional("count", default=None): _count,
        vol.Optional("brightness"): _peak_brightness,
    }
)
