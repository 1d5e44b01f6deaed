"""A water valve per sprinkler zone: open runs the zone for its run time, close stops it."""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.components.valve import ValveDeviceClass, ValveEntity, ValveEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .connection import AgentConnection, PiSecureWsConfigEntry
from .entity import PiSecureWsEntity, async_setup_device_entities, of_kind
from .protocol.devices import DeviceInfo as AgentDevice
from .protocol.devices import DeviceKind, SprinklerCapabilities, SprinklerState
from .protocol.devices.sprinklers import RunZone, StopZone, Zone, ZoneState

PARALLEL_UPDATES = 0

# A zone the agent declares without a default runs this long when its valve opens.
FALLBACK_ZONE_SECONDS = 600


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_setup_device_entities(entry, async_add_entities, _entities)


def zones_of(devices: Iterable[AgentDevice]) -> Iterable[tuple[AgentDevice, Zone]]:
    """Every zone of every sprinkler controller, with its controller."""
    for device in of_kind(devices, DeviceKind.SPRINKLER_CONTROLLER):
        if isinstance(device.capabilities, SprinklerCapabilities):
            for zone in device.capabilities.zones:
                yield device, zone


def _entities(connection: AgentConnection, devices: list[AgentDevice]) -> Iterable[ZoneValve]:
    return (ZoneValve(connection, device.id, zone) for device, zone in zones_of(devices))


def zone_default_seconds(zone: Zone) -> int:
    return int(zone.default_seconds or FALLBACK_ZONE_SECONDS)


class ZoneValve(PiSecureWsEntity, ValveEntity):
    """One zone; named as it is named in agent.toml."""

    _attr_device_class = ValveDeviceClass.WATER
    _attr_supported_features = ValveEntityFeature.OPEN | ValveEntityFeature.CLOSE
    _attr_reports_position = False
    _attr_translation_key = "zone"

    def __init__(self, connection: AgentConnection, device_id: str, zone: Zone) -> None:
        self.zone_id = zone.id
        super().__init__(connection, device_id, f"zone_{self.zone_id}")
        self._attr_name = zone.name or zone.id
        self._default_seconds = zone_default_seconds(zone)

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        assert self.unique_id is not None
        self.connection.zones_by_unique_id[self.unique_id] = (self.device_id, self.zone_id)
        unique_id = self.unique_id

        def forget() -> None:
            self.connection.zones_by_unique_id.pop(unique_id, None)

        self.async_on_remove(forget)

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
        seconds = self.connection.zone_run_seconds.get(
            (self.device_id, self.zone_id), self._default_seconds
        )
        await self.async_call(RunZone(zone=self.zone_id, seconds=seconds))

    async def async_close_valve(self) -> None:
        await self.async_call(StopZone(zone=self.zone_id))
