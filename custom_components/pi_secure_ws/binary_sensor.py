"""Binary sensors: the Pi's power and throttling problems, and the sprinkler pump."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .connection import AgentConnection, PiSecureWsConfigEntry
from .const import KIND_SPRINKLERS, KIND_SYSTEM
from .device import PiDevice
from .entity import (
    EntityRule,
    PiSecureWsEntity,
    async_setup_device_entities,
    described_devices,
    listed_reading,
)
from .util import dig

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PiBinarySensorDescription(BinarySensorEntityDescription, EntityRule):
    value_fn: Callable[[dict[str, Any]], bool | None]


def _flag(*path: str) -> Callable[[dict[str, Any]], bool | None]:
    def value(state: dict[str, Any]) -> bool | None:
        found = dig(state, *path)
        return found if isinstance(found, bool) else None

    return value


_HAS_THROTTLING = listed_reading("throttled")

BINARY_SENSORS: tuple[PiBinarySensorDescription, ...] = (
    PiBinarySensorDescription(
        key="under_voltage",
        translation_key="under_voltage",
        kind=KIND_SYSTEM,
        value_fn=_flag("throttled", "now", "under_voltage"),
        exists_fn=_HAS_THROTTLING,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    PiBinarySensorDescription(
        key="throttled",
        translation_key="throttled",
        kind=KIND_SYSTEM,
        value_fn=_flag("throttled", "now", "throttled"),
        exists_fn=_HAS_THROTTLING,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    PiBinarySensorDescription(
        key="freq_capped",
        translation_key="freq_capped",
        kind=KIND_SYSTEM,
        value_fn=_flag("throttled", "now", "freq_capped"),
        exists_fn=_HAS_THROTTLING,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    PiBinarySensorDescription(
        key="under_voltage_since_boot",
        translation_key="under_voltage_since_boot",
        kind=KIND_SYSTEM,
        value_fn=_flag("throttled", "since_boot", "under_voltage"),
        exists_fn=_HAS_THROTTLING,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    PiBinarySensorDescription(
        key="pump",
        translation_key="pump",
        kind=KIND_SPRINKLERS,
        value_fn=lambda state: _pump_running(state.get("pump")),
        exists_fn=lambda capabilities: bool(capabilities.get("has_pump")),
        device_class=BinarySensorDeviceClass.RUNNING,
    ),
)


def _pump_running(value: Any) -> bool | None:
    # The agent reports the relay's level, or null without a pump.
    return value if isinstance(value, bool) else None


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_setup_device_entities(entry, async_add_entities, _entities)


def _entities(connection: AgentConnection, devices: list[PiDevice]) -> Iterable[PiBinarySensor]:
    return (
        PiBinarySensor(connection, device, description)
        for device, description in described_devices(connection, devices, BINARY_SENSORS)
    )


class PiBinarySensor(PiSecureWsEntity, BinarySensorEntity):
    entity_description: PiBinarySensorDescription

    def __init__(
        self,
        connection: AgentConnection,
        device: PiDevice,
        description: PiBinarySensorDescription,
    ) -> None:
        super().__init__(connection, device, description.key)
        self.entity_description = description

    @property
    def is_on(self) -> bool | None:
        return self.entity_description.value_fn(self.device_state)
