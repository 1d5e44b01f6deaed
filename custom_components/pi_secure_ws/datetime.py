"""The sprinklers' rain delay: no zone runs before this moment."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from homeassistant.components.datetime import DateTimeEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .connection import AgentConnection, PiSecureWsConfigEntry
from .device import PiDevice
from .entity import EntityRule, PiSecureWsEntity, async_setup_device_entities, described_devices
from .protocol.devices import DeviceKind, SprinklerState
from .protocol.devices.sprinklers import SetRainDelay, SprinklerAction

PARALLEL_UPDATES = 0

RAIN_DELAY = EntityRule(kind=DeviceKind.SPRINKLER_CONTROLLER)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_setup_device_entities(entry, async_add_entities, _entities)


def _entities(connection: AgentConnection, devices: list[PiDevice]) -> Iterable[RainDelay]:
    return (
        RainDelay(connection, device)
        for device, _ in described_devices(connection, devices, (RAIN_DELAY,))
    )


class RainDelay(PiSecureWsEntity, DateTimeEntity):
    """Unknown when there is no delay; the clear button (or a past moment) ends it."""

    _attr_translation_key = "rain_delay"
    # Setting the end: for automations and the entity's own dialog. On the device page its
    # date-time input squeezes the name away, so the rain delay sensor shows the state there.
    _attr_entity_category = EntityCategory.CONFIG
    _attr_entity_registry_enabled_default = False

    def __init__(self, connection: AgentConnection, device: PiDevice) -> None:
        super().__init__(connection, device, "rain_delay")

    @property
    def native_value(self) -> datetime | None:
        state = self.state_as(SprinklerState)
        until = None if state is None else state.rain_delay_until
        if until is None or until <= dt_util.utcnow():
            return None
        return until

    async def async_set_value(self, value: datetime) -> None:
        if value <= dt_util.utcnow():
            await self.async_call(SprinklerAction.CLEAR_RAIN_DELAY)
            return
        await self.async_call(SetRainDelay(until=value))
