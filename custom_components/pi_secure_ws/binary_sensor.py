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
from .entity import PiSecureWsEntity, async_setup_device_entities, described_devices
from .protocol.client import DeviceInfo as AgentDevice
from .util import dig

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PiBinarySensorDescription(BinarySensorEntityDescription):
    kind: str
    value_fn: Callable[[dict[str, Any]], bool | None]
    exists_fn: Callable[[dict[str, Any]], bool] = lambda capabilities: True


def _flag(*path: str) -> Callable[[dict[str, Any]], bool | None]:
    def value(state: dict[str, Any]) -> bool | None:
        found = dig(state, *path)
        return found if isinstance(found, bool) else None

    return value


def _has_throttling(capabilities: dict[str, Any]) -> bool:
    sensors = capabilities.get("sensors")
    return not isinstance(sensors, list) or "throttled" in sensors


BINARY_SENSORS: tuple[PiBinarySensorDescription, ...] = (
    PiBinarySensorDescription(
        key="under_voltage",
        translation_key="under_voltage",
        kind=KIND_SYSTEM,
        value_fn=_flag("throttled", "now", "under_voltage"),
        exists_fn=_has_throttling,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    PiBinarySensorDescription(
        key="throttled",
        translation_key="throttled",
        kind=KIND_SYSTEM,
        value_fn=_flag("throttled", "now", "throttled"),
        exists_fn=_has_throttling,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    PiBinarySensorDescription(
        key="freq_capped",
        translation_key="freq_capped",
        kind=KIND_SYSTEM,
        value_fn=_flag("throttled", "now", "freq_capped"),
        exists_fn=_has_throttling,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    PiBinarySensorDescription(
        key="under_voltage_since_boot",
        translation_key="under_voltage_since_boot",
        kind=KIND_SYSTEM,
        value_fn=_flag("throttled", "since_boot", "under_voltage"),
        exists_fn=_has_throttling,
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


def _entities(connection: AgentConnection, devices: list[AgentDevice]) -> Iterable[PiBinarySensor]:
    return (
        PiBinarySensor(connection, device.id, description)
        for device, description in described_devices(devices, BINARY_SENSORS)
    )


class PiBinarySensor(PiSecureWsEntity, BinarySensorEntity):
    entity_description: PiBinarySensorDescription

    def __init__(
        self,
        connection: AgentConnection,
        device_id: str,
        description: PiBinarySensorDescription,
    ) -> None:
        super().__init__(connection, device_id, description.key)
        self.entity_description = description

    @property
    def is_on(self) -> bool | None:
        return self.entity_description.value_fn(self.device_state)
