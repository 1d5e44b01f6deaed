"""Buttons: restart the agent, reboot the Pi, refresh readings, frame paging, sprinkler stops."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from homeassistant.components.button import (
    ButtonDeviceClass,
    ButtonEntity,
    ButtonEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .connection import AgentConnection, PiSecureWsConfigEntry
from .device import PiDevice
from .entity import EntityRule, PiSecureWsEntity, async_setup_device_entities, described_devices
from .protocol.const import Role
from .protocol.devices import DeviceKind, FrameAction, SprinklerAction, SystemAction

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PiButtonDescription(ButtonEntityDescription, EntityRule):
    """An action without parameters, pressed."""

    action: SystemAction | FrameAction | SprinklerAction
    # The least role the agent lets run the action; a session below it gets no button.
    role: Role = Role.CONTROL


BUTTONS: tuple[PiButtonDescription, ...] = (
    PiButtonDescription(
        key="restart_agent",
        translation_key="restart_agent",
        kind=DeviceKind.SYSTEM,
        action=SystemAction.RESTART_AGENT,
        role=Role.ADMIN,
        exists_fn=lambda capabilities: capabilities.restart_agent,
        device_class=ButtonDeviceClass.RESTART,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    PiButtonDescription(
        key="reboot",
        translation_key="reboot",
        kind=DeviceKind.SYSTEM,
        action=SystemAction.REBOOT,
        role=Role.ADMIN,
        exists_fn=lambda capabilities: capabilities.reboot,
        device_class=ButtonDeviceClass.RESTART,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    PiButtonDescription(
        key="refresh",
        translation_key="refresh",
        kind=DeviceKind.SYSTEM,
        action=SystemAction.REFRESH,
        role=Role.VIEWER,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    PiButtonDescription(
        key="next",
        translation_key="next_picture",
        kind=DeviceKind.PICTURE_FRAME,
        action=FrameAction.NEXT,
    ),
    PiButtonDescription(
        key="previous",
        translation_key="previous_picture",
        kind=DeviceKind.PICTURE_FRAME,
        action=FrameAction.PREVIOUS,
    ),
    PiButtonDescription(
        key="stop_all",
        translation_key="stop_all_zones",
        kind=DeviceKind.SPRINKLER_CONTROLLER,
        action=SprinklerAction.STOP_ALL,
    ),
    PiButtonDescription(
        key="clear_queue",
        translation_key="clear_queue",
        kind=DeviceKind.SPRINKLER_CONTROLLER,
        action=SprinklerAction.CLEAR_QUEUE,
    ),
    PiButtonDescription(
        key="clear_rain_delay",
        translation_key="clear_rain_delay",
        kind=DeviceKind.SPRINKLER_CONTROLLER,
        action=SprinklerAction.CLEAR_RAIN_DELAY,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_setup_device_entities(entry, async_add_entities, _entities)


def _entities(connection: AgentConnection, devices: list[PiDevice]) -> Iterable[PiButton]:
    return (
        PiButton(connection, device, description)
        for device, description in described_devices(connection, devices, BUTTONS)
    )


class PiButton(PiSecureWsEntity, ButtonEntity):
    entity_description: PiButtonDescription

    def __init__(
        self, connection: AgentConnection, device: PiDevice, description: PiButtonDescription
    ) -> None:
        super().__init__(connection, device, description.key)
        self.entity_description = description

    async def async_press(self) -> None:
        await self.async_call(self.entity_description.action)
