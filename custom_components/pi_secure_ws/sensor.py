"""Sensors: the Pi's health, when each zone's run ends, and the picture on the frame."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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
from .const import KIND_FRAME, KIND_SPRINKLERS, KIND_SYSTEM
from .device import PiDevice, Zone
from .entity import (
    EntityRule,
    PiSecureWsEntity,
    async_setup_device_entities,
    described_devices,
    listed_reading,
)
from .util import dig, parse_timestamp

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PiSensorDescription(SensorEntityDescription, EntityRule):
    """A value read from one device kind's state."""

    value_fn: Callable[[dict[str, Any]], StateType | datetime]


def _rain_delay_end(state: dict[str, Any]) -> datetime | None:
    until = parse_timestamp(state.get("rain_delay_until"))
    return until if until is not None and until > dt_util.utcnow() else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


SENSORS: tuple[PiSensorDescription, ...] = (
    PiSensorDescription(
        key="cpu_temperature",
        translation_key="cpu_temperature",
        kind=KIND_SYSTEM,
        exists_fn=listed_reading("cpu_temperature"),
        value_fn=lambda state: _number(state.get("cpu_temperature")),
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    PiSensorDescription(
        key="uptime",
        translation_key="uptime",
        kind=KIND_SYSTEM,
        exists_fn=listed_reading("uptime"),
        value_fn=lambda state: _number(state.get("uptime")),
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        suggested_unit_of_measurement=UnitOfTime.HOURS,
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    PiSensorDescription(
        key="load",
        translation_key="load",
        kind=KIND_SYSTEM,
        exists_fn=listed_reading("load"),
        value_fn=lambda state: _number(dig(state, "load", "1m")),
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    PiSensorDescription(
        key="disk_free",
        translation_key="disk_free",
        kind=KIND_SYSTEM,
        exists_fn=listed_reading("disk"),
        value_fn=lambda state: _number(dig(state, "disk", "free_bytes")),
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIGABYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    PiSensorDescription(
        key="memory_used",
        translation_key="memory_used",
        kind=KIND_SYSTEM,
        exists_fn=listed_reading("memory"),
        value_fn=lambda state: _number(dig(state, "memory", "used_percent")),
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    PiSensorDescription(
        key="wifi_signal",
        translation_key="wifi_signal",
        kind=KIND_SYSTEM,
        exists_fn=listed_reading("wifi"),
        value_fn=lambda state: _number(dig(state, "wifi", "signal_dbm")),
        device_class=SensorDeviceClass.SIGNAL_STRENGTH,
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    # Shown on the device page as "in 2 days"; a date-time input there squeezes its label away.
    PiSensorDescription(
        key="rain_delay_ends",
        translation_key="rain_delay_ends",
        kind=KIND_SPRINKLERS,
        value_fn=_rain_delay_end,
        device_class=SensorDeviceClass.TIMESTAMP,
    ),
    PiSensorDescription(
        key="current_picture",
        translation_key="current_picture",
        kind=KIND_FRAME,
        value_fn=lambda state: state.get("current"),
        # It changes with every picture, like the image entity: enabled, the two double the
        # rows a slideshow writes to the database and the logbook.
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
)
# A sensor per zone: when its run ends.
ZONE_RUN_ENDS = EntityRule(kind=KIND_SPRINKLERS)


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
    entity_description: PiSensorDescription

    def __init__(
        self, connection: AgentConnection, device: PiDevice, description: PiSensorDescription
    ) -> None:
        super().__init__(connection, device, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> StateType | datetime:
        return self.entity_description.value_fn(self.device_state)


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
        zone = dig(self.device_state, "zones", self.zone_id)
        if not isinstance(zone, dict) or not zone.get("open"):
            return None
        return parse_timestamp(zone.get("ends_at"))
