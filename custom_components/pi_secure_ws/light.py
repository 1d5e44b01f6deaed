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
from .const import DOMAIN, KIND_LIGHT
from .device import PiDevice
from .entity import EntityRule, PiSecureWsEntity, async_setup_device_entities, described_devices

# Commands go to one Pi over one session: let the agent order them, not Home Assistant.
PARALLEL_UPDATES = 0

LIGHT = EntityRule(kind=KIND_LIGHT)


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
        mode = ColorMode.BRIGHTNESS if capabilities.get("dimmable") else ColorMode.ONOFF
        self._attr_color_mode = mode
        self._attr_supported_color_modes = {mode}
        features = LightEntityFeature(0)
        if capabilities.get("supports_transition"):
            features |= LightEntityFeature.TRANSITION
        effects = [str(effect) for effect in capabilities.get("effects") or []]
        if effects:
            features |= LightEntityFeature.EFFECT
            self._attr_effect_list = effects
        self._attr_supported_features = features

    @property
    def is_on(self) -> bool | None:
        value = self.device_state.get("on")
        return None if value is None else bool(value)

    @property
    def brightness(self) -> int | None:
        if self._attr_color_mode is not ColorMode.BRIGHTNESS:
            return None
        value = self.device_state.get("brightness")
        return None if value is None else int(value)

    @property
    def effect(self) -> str | None:
        value = self.device_state.get("effect")
        return None if value is None else str(value)

    async def async_turn_on(self, **kwargs: Any) -> None:
        params: dict[str, Any]
        effect = kwargs.get(ATTR_EFFECT)
        if effect is not None and effect != EFFECT_OFF:
            if effect not in (self._attr_effect_list or ()):
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="unknown_effect",
                    translation_placeholders={"effect": str(effect)},
                )
            params = {}
            if ATTR_BRIGHTNESS in kwargs and self._attr_color_mode is ColorMode.BRIGHTNESS:
                params["brightness"] = max(1, int(kwargs[ATTR_BRIGHTNESS]))
            await self.async_call(str(effect), params)
            return
        params = {}
        if ATTR_BRIGHTNESS in kwargs and self._attr_color_mode is ColorMode.BRIGHTNESS:
            params["brightness"] = int(kwargs[ATTR_BRIGHTNESS])
        if ATTR_TRANSITION in kwargs and self.supported_features & LightEntityFeature.TRANSITION:
            params["transition"] = float(kwargs[ATTR_TRANSITION])
        await self.async_call("turn_on", params)

    async def async_turn_off(self, **kwargs: Any) -> None:
        params: dict[str, Any] = {}
        if ATTR_TRANSITION in kwargs and self.supported_features & LightEntityFeature.TRANSITION:
            params["transition"] = float(kwargs[ATTR_TRANSITION])
        await self.async_call("turn_off", params)
