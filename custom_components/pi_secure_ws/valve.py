"""A water valve per sprinkler zone: open runs the zone for its run time, close stops it."""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.components.valve import ValveDeviceClass, ValveEntity, ValveEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .connection import AgentConnection, PiSecureWsConfigEntry
from .device import PiDevice, Zone
from .entity import EntityRule, PiSecureWsEntity, async_setup_device_entities, described_devices
from .protocol.devices import DeviceKind, SprinklerState
from .protocol.devices.sprinklers import RunZone, StopZone, ZoneState

PARALLEL_UPDATES = 0

ZONES = EntityRule(kind=DeviceKind.SPRINKLER_CONTROLLER)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_setup_device_entities(entry, async_add_entities, _entities)


def _entities(connection: AgentConnection, devices: list[PiDevice]) -> Iterable[ZoneValve]:
    return (
        ZoneValve(connection, device, zone)
        for device, _ in described_devices(connection, devices, (ZONES,))
        for zone in device.zones.values()
    )


class ZoneValve(PiSecureWsEntity, ValveEntity):
    """One zone; named as it is named in agent.toml."""

    _attr_device_class = ValveDeviceClass.WATER
    _attr_supported_features = ValveEntityFeature.OPEN | ValveEntityFeature.CLOSE
    _attr_reports_position = False
    _attr_translation_key = "zone"

    def __init__(self, connection: AgentConnection, device: PiDevice, zone: Zone) -> None:
        super().__init__(connection, device, zone.key)
        self.zone = zone
        self.zone_id = zone.id
        self._attr_name = zone.name

    @property
    def available(self) -> bool:
        return super().available and self._zone_state is not None

    @property
    def _zone_state(self) -> ZoneState | None:
        state = self.state_as(SprinklerState)
        return None if state is None else state.zones.get(self.zone_id)

    @property
    def is_closed(self) -> bool | None:
        zone = self._zone_state
        return None if zone is None else not zone.open

    @property
    def is_opening(self) -> bool:
        """Queued behind other zones (the controller limits how many run at once)."""
        state = self.state_as(SprinklerState)
        return state is not None and state.is_queued(self.zone_id)

    async def async_open_valve(self) -> None:
        # The zone's run time: its default, or what its run-time number was set to.
        await self.async_call(RunZone(zone=self.zone_id, seconds=self.zone.run_seconds))

    async def async_close_valve(self) -> None:
        await self.async_call(StopZone(zone=self.zone_id))
