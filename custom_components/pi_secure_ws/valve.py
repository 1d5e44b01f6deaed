"""A water valve per sprinkler zone: open runs the zone for its run time, close stops it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeassistant.components.valve import ValveDeviceClass, ValveEntity, ValveEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .connection import AgentConnection, PiSecureWsConfigEntry
from .const import KIND_SPRINKLERS
from .entity import PiSecureWsEntity, async_setup_device_entities, of_kind
from .protocol.client import DeviceInfo as AgentDevice
from .util import dig, zone_list

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_setup_device_entities(entry, async_add_entities, _entities)


def _entities(connection: AgentConnection, devices: list[AgentDevice]) -> Iterable[ZoneValve]:
    return (
        ZoneValve(connection, device.id, zone)
        for device in of_kind(devices, KIND_SPRINKLERS)
        for zone in zone_list(device.capabilities)
    )


def zone_default_seconds(zone: dict[str, Any]) -> int:
    return int(zone.get("default_seconds") or 600)


class ZoneValve(PiSecureWsEntity, ValveEntity):
    """One zone; named as it is named in agent.toml."""

    _attr_device_class = ValveDeviceClass.WATER
    _attr_supported_features = ValveEntityFeature.OPEN | ValveEntityFeature.CLOSE
    _attr_reports_position = False
    _attr_translation_key = "zone"

    def __init__(self, connection: AgentConnection, device_id: str, zone: dict[str, Any]) -> None:
        self.zone_id = str(zone["id"])
        super().__init__(connection, device_id, f"zone_{self.zone_id}")
        self._attr_name = str(zone.get("name") or self.zone_id)
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
    def _zone_state(self) -> dict[str, Any] | None:
        value = dig(self.device_state, "zones", self.zone_id)
        return value if isinstance(value, dict) else None

    @property
    def is_closed(self) -> bool | None:
        state = self._zone_state
        return None if state is None else not state.get("open")

    @property
    def is_opening(self) -> bool:
        """Queued behind other zones (the controller limits how many run at once)."""
        queue = self.device_state.get("queue") or []
        return any(
            (item.get("zone") if isinstance(item, dict) else item) == self.zone_id for item in queue
        )

    async def async_open_valve(self) -> None:
        seconds = self.connection.zone_run_seconds.get(
            (self.device_id, self.zone_id), self._default_seconds
        )
        await self.async_call("run", {"zone": self.zone_id, "seconds": seconds})

    async def async_close_valve(self) -> None:
        await self.async_call("stop", {"zone": self.zone_id})
