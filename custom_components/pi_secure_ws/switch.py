"""Switches of the picture frame: slideshow running, display power, shuffle."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .connection import AgentConnection, PiSecureWsConfigEntry
from .const import KIND_FRAME
from .device import PiDevice
from .entity import EntityRule, PiSecureWsEntity, async_setup_device_entities, described_devices

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PiSwitchDescription(SwitchEntityDescription, EntityRule):
    is_on_fn: Callable[[dict[str, Any]], bool | None]
    # (action, params) that turn the switch on or off.
    turn_on: tuple[str, dict[str, Any]]
    turn_off: tuple[str, dict[str, Any]]


def _bool(key: str, *, invert: bool = False) -> Callable[[dict[str, Any]], bool | None]:
    def value(state: dict[str, Any]) -> bool | None:
        found = state.get(key)
        return (found is not invert) if isinstance(found, bool) else None

    return value


SWITCHES: tuple[PiSwitchDescription, ...] = (
    PiSwitchDescription(
        key="slideshow",
        translation_key="slideshow",
        kind=KIND_FRAME,
        is_on_fn=_bool("paused", invert=True),
        turn_on=("resume", {}),
        turn_off=("pause", {}),
    ),
    PiSwitchDescription(
        key="display",
        translation_key="display",
        kind=KIND_FRAME,
        is_on_fn=_bool("display_on"),
        turn_on=("set_display", {"on": True}),
        turn_off=("set_display", {"on": False}),
        exists_fn=lambda capabilities: capabilities.get("display_power") is not False,
    ),
    PiSwitchDescription(
        key="shuffle",
        translation_key="shuffle",
        kind=KIND_FRAME,
        is_on_fn=_bool("shuffle"),
        turn_on=("set_shuffle", {"shuffle": True}),
        turn_off=("set_shuffle", {"shuffle": False}),
        entity_category=EntityCategory.CONFIG,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_setup_device_entities(entry, async_add_entities, _entities)


def _entities(connection: AgentConnection, devices: list[PiDevice]) -> Iterable[PiSwitch]:
    return (
        PiSwitch(connection, device, description)
        for device, description in described_devices(connection, devices, SWITCHES)
    )


class PiSwitch(PiSecureWsEntity, SwitchEntity):
    entity_description: PiSwitchDescription

    def __init__(
        self, connection: AgentConnection, device: PiDevice, description: PiSwitchDescription
    ) -> None:
        super().__init__(connection, device, description.key)
        self.entity_description = description

    @property
    def is_on(self) -> bool | None:
        return self.entity_description.is_on_fn(self.device_state)

    async def async_turn_on(self, **kwargs: Any) -> None:
        action, params = self.entity_description.turn_on
        await self.async_call(action, dict(params))

    async def async_turn_off(self, **kwargs: Any) -> None:
        action, params = self.entity_description.turn_off
        await self.async_call(action, dict(params))
