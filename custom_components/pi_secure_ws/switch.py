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
from .device import PiDevice
from .entity import (
    EntityRule,
    PiSecureWsEntity,
    always,
    async_setup_device_entities,
    described_devices,
)
from .protocol.devices import ActionParams, DeviceKind, FrameCapabilities, FrameState
from .protocol.devices.frame import FrameAction, SetDisplay, SetShuffle

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PiSwitchDescription(SwitchEntityDescription, EntityRule):
    """A frame setting that is on or off, read from the typed state."""

    kind: str = DeviceKind.PICTURE_FRAME
    is_on_fn: Callable[[FrameState], bool]
    # The action (its typed parameters, or its name when it has none) that turns it on or off.
    turn_on: ActionParams | FrameAction
    turn_off: ActionParams | FrameAction
    exists_fn: Callable[[FrameCapabilities], bool] = always


SWITCHES: tuple[PiSwitchDescription, ...] = (
    PiSwitchDescription(
        key="slideshow",
        translation_key="slideshow",
        is_on_fn=lambda state: not state.paused,
        turn_on=FrameAction.RESUME,
        turn_off=FrameAction.PAUSE,
    ),
    PiSwitchDescription(
        key="display",
        translation_key="display",
        is_on_fn=lambda state: state.display_on,
        turn_on=SetDisplay(on=True),
        turn_off=SetDisplay(on=False),
        exists_fn=lambda capabilities: capabilities.display_power,
    ),
    PiSwitchDescription(
        key="shuffle",
        translation_key="shuffle",
        is_on_fn=lambda state: state.shuffle,
        turn_on=SetShuffle(shuffle=True),
        turn_off=SetShuffle(shuffle=False),
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
        state = self.state_as(FrameState)
        return None if state is None else self.entity_description.is_on_fn(state)

    async def async_turn_on(self, **kwargs: Any) -> None:
        await self.async_call(self.entity_description.turn_on)

    async def async_turn_off(self, **kwargs: Any) -> None:
        await self.async_call(self.entity_description.turn_off)
