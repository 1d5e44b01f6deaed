"""Sensors: the Pi's health, when each zone's run ends, and the picture on the frame."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfInformation,
    UnitOfTemperature,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .connection import AgentConnection, PiSecureWsConfigEntry
from .device import PiDevice, Zone
from .entity import (
    EntityRule,
    PiSecureWsEntity,
    async_setup_device_entities,
    described_devices,
    listed_reading,
)
from .protocol.devices import CONTRACTS, DeviceKind, FrameState, SprinklerState, SystemState
from .protocol.devices.system import SystemSensor

PARALLEL_UPDATES = 0

StateT = TypeVar("StateT")


@dataclass(frozen=True, kw_only=True)
class PiSensorDescription(SensorEntityDescription, EntityRule, Generic[StateT]):
    """A value read from one device kind's typed state."""

    value_fn: Callable[[StateT], StateType | datetime]


def _rain_delay_end(state: SprinklerState) -> datetime | None:
    until = state.rain_delay_until
    return until if until is not None and until > dt_util.utcnow() else None


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


SystemSensorDescription = PiSensorDescription[SystemState]

SENSORS: tuple[PiSensorDescription[Any], ...] = (
    SystemSensorDescription(
        key="cpu_temperature",
        translation_key="cpu_temperature",
        kind=DeviceKind.SYSTEM,
        exists_fn=listed_reading(SystemSensor.CPU_TEMPERATURE),
        value_fn=lambda state: _number(state.cpu_temperature),
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    SystemSensorDescription(
        key="uptime",
        translation_key="uptime",
        kind=DeviceKind.SYSTEM,
        exists_fn=listed_reading(SystemSensor.UPTIME),
        value_fn=lambda state: _number(state.uptime),
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        suggested_unit_of_measurement=UnitOfTime.HOURS,
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    SystemSensorDescription(
        key="load",
        translation_key="load",
        kind=DeviceKind.SYSTEM,
        exists_fn=listed_reading(SystemSensor.LOAD),
        value_fn=lambda state: None if state.load is None else _number(state.load.one),
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    SystemSensorDescription(
        key="disk_free",
        translation_key="disk_free",
        kind=DeviceKind.SYSTEM,
        exists_fn=listed_reading(SystemSensor.DISK),
        value_fn=lambda state: None if state.disk is None else _number(state.disk.free_bytes),
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIGABYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    SystemSensorDescription(
        key="memory_used",
        translation_key="memory_used",
        kind=DeviceKind.SYSTEM,
        exists_fn=listed_reading(SystemSensor.MEMORY),
        value_fn=lambda state: None if state.memory is None else _number(state.memory.used_percent),
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    SystemSensorDescription(
        key="wifi_signal",
        translation_key="wifi_signal",
        kind=DeviceKind.SYSTEM,
        exists_fn=listed_reading(SystemSensor.WIFI),
        value_fn=lambda state: None if state.wifi is None else _number(state.wifi.signal_dbm),
        device_class=SensorDeviceClass.SIGNAL_STRENGTH,
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    # Shown on the device page as "in 2 days"; a date-time input there squeezes its label away.
    PiSensorDescription[SprinklerState](
        key="rain_delay_ends",
        translation_key="rain_delay_ends",
        kind=DeviceKind.SPRINKLER_CONTROLLER,
        value_fn=_rain_delay_end,
        device_class=SensorDeviceClass.TIMESTAMP,
    ),
    PiSensorDescription[FrameState](
        key="current_picture",
        translation_key="current_picture",
        kind=DeviceKind.PICTURE_FRAME,
        value_fn=lambda state: state.current,
        # It changes with every picture, like the image entity: enabled, the two double the
        # rows a slideshow writes to the database and the logbook.
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
)
# A sensor per zone: when its run ends.
ZONE_RUN_ENDS = EntityRule(kind=DeviceKind.SPRINKLER_CONTROLLER)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_setup_device_entities(entry, async_add_entities, _entities)


def _entities(connection: AgentConnection, devices: list[PiDevice]) -> Iterable[PiSecureWsEntity]:
    entities: list[PiSecureWsEntity] = [
        PiSensor(connection, device, description)
        for device, description in described_devices(connection, devices, SENSORS)
    ]
    entities.extend(
        ZoneRunEnds(connection, device, zone)
        for device, _ in described_devices(connection, devices, (ZONE_RUN_ENDS,))
        for zone in device.zones.values()
    )
    return entities


class PiSensor(PiSecureWsEntity, SensorEntity):
    entity_description: PiSensorDescription[Any]

    def __init__(
        self, connection: AgentConnection, device: PiDevice, description: PiSensorDescription[Any]
    ) -> None:
        super().__init__(connection, device, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> StateType | datetime:
        description = self.entity_description
        state = self.state_as(CONTRACTS[description.kind].state)
        return None if state is None else description.value_fn(state)


class ZoneRunEnds(PiSecureWsEntity, SensorEntity):
    """When the zone's current run ends; unknown while it is closed."""

    _attr_translation_key = "zone_run_ends"
    _attr_device_class = SensorDeviceClass.TIMESTAMP

    def __init__(self, connection: AgentConnection, device: PiDevice, zone: Zone) -> None:
        super().__init__(connection, device, f"{zone.key}_run_ends")
        self.zone_id = zone.id
        self._attr_translation_placeholders = {"zone": zone.name}

    @property
    def native_value(self) -> datetime | None:
        state = self.state_as(SprinklerState)
        zone = None if state is None else state.zones.get(self.zone_id)
        if zone is None or not zone.open:
            return None
        return zone.ends_at
