"""A light per GPIO light: on/off, or brightness with transitions when the pin dims."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeassistant.components.light import (
    ATTR_BRIGHTNESS,
    ATTR_EFFECT,
    ATTR_TRANSITION,
    EFFECT_OFF,
    LightEntity,
)
from homeassistant.components.light.const import ColorMode, LightEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .connection import AgentConnection, PiSecureWsConfigEntry
from .const import DOMAIN
from .device import PiDevice
from .entity import EntityRule, PiSecureWsEntity, async_setup_device_entities, described_devices
from .protocol.devices import DeviceKind, LightCapabilities, LightState
from .protocol.devices.light import EFFECT_PARAMS, LightEffect, TurnOff, TurnOn

# Commands go to one Pi over one session: let the agent order them, not Home Assistant.
PARALLEL_UPDATES = 0

LIGHT = EntityRule(kind=DeviceKind.LIGHT)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_setup_device_entities(entry, async_add_entities, _entities)


def _entities(connection: AgentConnection, devices: list[PiDevice]) -> Iterable[PiSecureWsLight]:
    return (
        PiSecureWsLight(connection, device)
        for device, _ in described_devices(connection, devices, (LIGHT,))
    )


class PiSecureWsLight(PiSecureWsEntity, LightEntity):
    """One light the agent drives; named as it is named in agent.toml."""

    _attr_translation_key = "light"

    def __init__(self, connection: AgentConnection, device: PiDevice) -> None:
        super().__init__(connection, device, "light")
        self._attr_name = device.name
        capabilities = device.capabilities
        assert isinstance(capabilities, LightCapabilities)  # described_devices checked the kind
        mode = ColorMode.BRIGHTNESS if capabilities.dimmable else ColorMode.ONOFF
        self._attr_color_mode = mode
        self._attr_supported_color_modes = {mode}
        features = LightEntityFeature(0)
        if capabilities.supports_transition:
            features |= LightEntityFeature.TRANSITION
        # Effects this integration can start: each has its own action (EFFECT_PARAMS).
        effects = [str(effect) for effect in capabilities.known_effects]
        if effects:
            features |= LightEntityFeature.EFFECT
            self._attr_effect_list = effects
        self._attr_supported_features = features

    @property
    def is_on(self) -> bool | None:
        state = self.state_as(LightState)
        return None if state is None else state.on

    @property
    def brightness(self) -> int | None:
        if self._attr_color_mode is not ColorMode.BRIGHTNESS:
            return None
        state = self.state_as(LightState)
        return None if state is None else state.brightness

    @property
    def effect(self) -> str | None:
        state = self.state_as(LightState)
        return None if state is None else state.effect

    def _transition(self, kwargs: dict[str, Any]) -> float | None:
        if ATTR_TRANSITION in kwargs and self.supported_features & LightEntityFeature.TRANSITION:
            return float(kwargs[ATTR_TRANSITION])
        return None

    def _brightness(self, kwargs: dict[str, Any]) -> int | None:
        if ATTR_BRIGHTNESS in kwargs and self._attr_color_mode is ColorMode.BRIGHTNESS:
            return int(kwargs[ATTR_BRIGHTNESS])
        return None

    async def async_turn_on(self, **kwargs: Any) -> None:
        effect = kwargs.get(ATTR_EFFECT)
        if effect is not None and effect != EFFECT_OFF:
            if effect not in (self._attr_effect_list or ()):
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="unknown_effect",
                    translation_placeholders={"effect": str(effect)},
                )
            brightness = self._brightness(kwargs)
            start_effect = EFFECT_PARAMS[LightEffect(effect)]
            # An effect's peak is at least 1: 0 would be no effect at all.
            await self.async_call(
                start_effect(brightness=None if brightness is None else max(1, brightness))
            )
            return
        await self.async_call(
            TurnOn(brightness=self._brightness(kwargs), transition=self._transition(kwargs))
        )

    async def async_turn_off(self, **kwargs: Any) -> None:
        await self.async_call(TurnOff(transition=self._transition(kwargs)))
