"""The base of every entity: an agent device (or a part of it) on the Pi's device."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from homeassistant.core import callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import (
    AddConfigEntryEntitiesCallback,
    async_get_current_platform,
)

from .connection import AgentConnection, PiSecureWsConfigEntry
from .device import PiDevice
from .protocol.const import Role
from .protocol.devices import CONTRACTS, ActionParams, SystemCapabilities, WireModel
from .protocol.devices.system import SystemSensor


def always(_capabilities: object) -> bool:
    return True


@dataclass(frozen=True, kw_only=True)
class EntityRule:
    """Which of the agent's devices get an entity: the one rule every platform applies.

    An entity exists for a device of ``kind`` whose capabilities pass ``exists_fn``, in a session
    whose role may use it. Entity descriptions carry the rule (they inherit this); a platform
    without descriptions names one rule. ``exists_fn`` gets the kind's typed capabilities.
    """

    kind: str  # a protocol DeviceKind
    exists_fn: Callable[[Any], bool] = always
    # The least role that can use the entity; a session below it gets none.
    role: Role = Role.VIEWER


def listed_reading(sensor: SystemSensor) -> Callable[[SystemCapabilities], bool]:
    """A reading the system device lists as present on this Pi."""

    def exists(capabilities: SystemCapabilities) -> bool:
        return capabilities.has_sensor(sensor)

    return exists


RuleT = TypeVar("RuleT", bound=EntityRule)
StateT = TypeVar("StateT", bound=WireModel)
# A platform's entities for some of the agent's devices (all of them at setup, new ones later).
EntityFactory = Callable[[AgentConnection, list[PiDevice]], Iterable["PiSecureWsEntity"]]


def described_devices(
    connection: AgentConnection, devices: Iterable[PiDevice], rules: Iterable[RuleT]
) -> Iterator[tuple[PiDevice, RuleT]]:
    """Each (device, rule) pair that gets an entity, in the rules' order."""
    devices = list(devices)
    for rule in rules:
        if connection.role < rule.role:
            continue
        typed = CONTRACTS[rule.kind].capabilities
        for device in devices:
            if (
                device.kind == rule.kind
                and isinstance(device.capabilities, typed)
                and rule.exists_fn(device.capabilities)
            ):
                yield device, rule


@callback
def async_setup_device_entities(
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    factory: EntityFactory,
) -> None:
    """Add a platform's entities for the agent's devices now, and for devices it adds later.

    Each device object learns which entities it got, so that the connection can remove them
    from the registry when the agent stops reporting the device.
    """
    connection = entry.runtime_data
    platform = async_get_current_platform().domain

    @callback
    def add(devices: list[PiDevice]) -> None:
        entities = list(factory(connection, devices))
        for entity in entities:
            assert entity.unique_id is not None
            entity.device.entity_unique_ids.add(entity.unique_id)
        async_add_entities(entities)

    connection.async_add_device_adder(platform, add)


class PiSecureWsEntity(Entity):
    """Pushed state, available while the session is up and the agent reports the device."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, connection: AgentConnection, device: PiDevice, key: str) -> None:
        self.connection = connection
        self.device = device
        self.device_id = device.id
        self._attr_unique_id = device.unique_id(key)
        self._attr_device_info = connection.device_info

    @property
    def available(self) -> bool:
        return self.connection.connected and self.device.state is not None

    def state_as(self, kind_state: type[StateT]) -> StateT | None:
        """The device's latest state, typed; None while it has none (or another kind's)."""
        state = self.device.state
        return state if isinstance(state, kind_state) else None

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(self.device.async_add_listener(self._handle_device_update))

    @callback
    def _handle_device_update(self) -> None:
        self.async_write_ha_state()

    async def async_call(
        self, action: str | ActionParams, params: dict[str, Any] | None = None
    ) -> Any:
        """Run an action of the entity's device: its typed parameters, or its name."""
        if isinstance(action, ActionParams):
            return await self.connection.async_call(self.device_id, action.action, action.to_wire())
        return await self.connection.async_call(self.device_id, action, params)
