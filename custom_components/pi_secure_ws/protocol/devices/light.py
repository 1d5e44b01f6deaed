"""The ``light`` kind: a relay or LED on one GPIO pin, or a PWM-dimmed light with effects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Final, Self

from .wire import ActionParams, Fields, WireModel

MAX_BRIGHTNESS: Final = 255
MAX_TRANSITION: Final = 60.0


class LightAction(StrEnum):
    TURN_ON = "turn_on"
    TURN_OFF = "turn_off"
    TOGGLE = "toggle"
    BLINK = "blink"
    PULSE = "pulse"


class LightEffect(StrEnum):
    """The effects a light lists in its capabilities and reports in its state."""

    BLINK = "blink"
    PULSE = "pulse"


@dataclass(frozen=True, kw_only=True, slots=True)
class LightCapabilities(WireModel):
    WHERE: ClassVar[str] = "light capabilities"

    dimmable: bool
    supports_transition: bool
    # Effect names; a newer agent may list effects this client does not know.
    effects: tuple[str, ...]

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            dimmable=fields.boolean("dimmable"),
            supports_transition=fields.boolean("supports_transition"),
            effects=fields.strings("effects"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "dimmable": self.dimmable,
            "supports_transition": self.supports_transition,
            "effects": list(self.effects),
        }

    @property
    def known_effects(self) -> tuple[LightEffect, ...]:
        """The listed effects this protocol version knows, in the agent's order."""
        known = set(LightEffect)
        return tuple(LightEffect(effect) for effect in self.effects if effect in known)


@dataclass(frozen=True, kw_only=True, slots=True)
class LightState(WireModel):
    WHERE: ClassVar[str] = "light state"

    on: bool  # on, or running an effect
    effect: str | None
    # Dimmable lights only (None: the key is absent): 0 when off, the peak during an effect.
    brightness: int | None = None

    @classmethod
    def read(cls, fields: Fields) -> Self:
        brightness = None
        if "brightness" in fields.data:
            brightness = fields.integer("brightness", 0, MAX_BRIGHTNESS)
        return cls(
            on=fields.boolean("on"),
            effect=fields.optional_string("effect"),
            brightness=brightness,
        )

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"on": self.on, "effect": self.effect}
        if self.brightness is not None:
            wire["brightness"] = self.brightness
        return wire


@dataclass(frozen=True, kw_only=True, slots=True)
class TurnOn(ActionParams):
    """``brightness`` 0-255 (0 turns off; dimmable lights only), ``transition`` 0-60 s."""

    action: ClassVar[str] = LightAction.TURN_ON
    brightness: int | None = None
    transition: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class TurnOff(ActionParams):
    action: ClassVar[str] = LightAction.TURN_OFF
    transition: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Toggle(ActionParams):
    action: ClassVar[str] = LightAction.TOGGLE
    transition: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Blink(ActionParams):
    """Times above 0 to 3600 s (default 1); ``count`` None repeats until the next command."""

    action: ClassVar[str] = LightAction.BLINK
    on_time: float | None = None
    off_time: float | None = None
    count: int | None = None
    brightness: int | None = None  # the peak, 1-255


@dataclass(frozen=True, kw_only=True, slots=True)
class Pulse(ActionParams):
    action: ClassVar[str] = LightAction.PULSE
    fade_in: float | None = None
    fade_out: float | None = None
    count: int | None = None
    brightness: int | None = None


# Each effect is started by its own action (the names happen to match; this says which).
EFFECT_PARAMS: Final[Mapping[LightEffect, type[Blink] | type[Pulse]]] = {
    LightEffect.BLINK: Blink,
    LightEffect.PULSE: Pulse,
}
