"""Binary sensors: the Pi's power and throttling problems, and the sprinkler pump."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
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
    listed_reading,
)
from .protocol.devices import (
    CONTRACTS,
    DeviceKind,
    SprinklerCapabilities,
    SprinklerState,
    SystemCapabilities,
    SystemState,
)
from .protocol.devices.system import SystemSensor, ThrottleFlags

PARALLEL_UPDATES = 0

StateT = TypeVar("StateT")
CapabilitiesT = TypeVar("CapabilitiesT")


@dataclass(frozen=True, kw_only=True)
class PiBinarySensorDescription(
    BinarySensorEntityDescription, EntityRule, Generic[StateT, CapabilitiesT]
):
    """A flag read from one device kind's typed state."""

    value_fn: Callable[[StateT], bool | None]
    exists_fn: Callable[[CapabilitiesT], bool] = always


def _flag(
    read: Callable[[ThrottleFlags], bool], *, since_boot: bool = False
) -> Callable[[SystemState], bool | None]:
    def value(state: SystemState) -> bool | None:
        if state.throttled is None:
            return None
        return read(state.throttled.since_boot if since_boot else state.throttled.now)

    return value


_HAS_THROTTLING = listed_reading(SystemSensor.THROTTLED)
SystemFlag = PiBinarySensorDescription[SystemState, SystemCapabilities]

BINARY_SENSORS: tuple[PiBinarySensorDescription[Any, Any], ...] = (
    SystemFlag(
        key="under_voltage",
        translation_key="under_voltage",
        kind=DeviceKind.SYSTEM,
        value_fn=_flag(lambda flags: flags.under_voltage),
        exists_fn=_HAS_THROTTLING,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    SystemFlag(
        key="throttled",
        translation_key="throttled",
        kind=DeviceKind.SYSTEM,
        value_fn=_flag(lambda flags: flags.throttled),
        exists_fn=_HAS_THROTTLING,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
    ),
    SystemFlag(
        key="freq_capped",
        translation_key="freq_capped",
        kind=DeviceKind.SYSTEM,
        value_fn=_flag(lambda flags: flags.freq_capped),
        exists_fn=_HAS_THROTTLING,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    SystemFlag(
        key="under_voltage_since_boot",
        translation_key="under_voltage_since_boot",
        kind=DeviceKind.SYSTEM,
        value_fn=_flag(lambda flags: flags.under_voltage, since_boot=True),
        exists_fn=_HAS_THROTTLING,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
    ),
    PiBinarySensorDescription[SprinklerState, SprinklerCapabilities](
        key="pump",
        translation_key="pump",
        kind=DeviceKind.SPRINKLER_CONTROLLER,
        # The pump or master valve relay's level; None (unknown) without one.
        value_fn=lambda state: state.pump,
        exists_fn=lambda capabilities: capabilities.has_pump,
        device_class=BinarySensorDeviceClass.RUNNING,
    ),
)


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
    entity_description: PiBinarySensorDescription[Any, Any]

    def __init__(
        self,
        connection: AgentConnection,
        device: PiDevice,
        description: PiBinarySensorDescription[Any, Any],
    ) -> None:
        super().__init__(connection, device, description.key)
        self.entity_description = description

    @property
    def is_on(self) -> bool | None:
        description = self.entity_description
        state = self.state_as(CONTRACTS[description.kind].state)
        return None if state is None else description.value_fn(state)
