"""The base of every entity: an agent device (or a part of it) on the Pi's device."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from homeassistant.core import callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import (
    AddConfigEntryEntitiesCallback,
    async_get_current_platform,
)

from .connection import AgentConnection, PiSecureWsConfigEntry
from .protocol.devices import CONTRACTS, ActionParams, WireModel
from .protocol.devices import DeviceInfo as AgentDevice


class DeviceDescription(Protocol):
    """An entity description for one device kind, present when the capabilities allow it."""

    @property
    def kind(self) -> str: ...

    @property
    def exists_fn(self) -> Callable[[Any], bool]: ...


def always(_capabilities: object) -> bool:
    return True


DescriptionT = TypeVar("DescriptionT", bound=DeviceDescription)
StateT = TypeVar("StateT", bound=WireModel)
# A platform's entities for some of the agent's devices (all of them at setup, new ones later).
EntityFactory = Callable[[AgentConnection, list[AgentDevice]], Iterable["PiSecureWsEntity"]]


def of_kind(devices: Iterable[AgentDevice], kind: str) -> list[AgentDevice]:
    return [device for device in devices if device.kind == kind]


def described_devices(
    devices: Iterable[AgentDevice], descriptions: Iterable[DescriptionT]
) -> Iterator[tuple[AgentDevice, DescriptionT]]:
    """Each (device, description) pair the agent reports: only what exists gets an entity.

    ``exists_fn`` gets the capabilities of the description's kind, typed (the client decoded them).
    """
    devices = list(devices)
    for description in descriptions:
        typed = CONTRACTS[description.kind].capabilities
        for device in of_kind(devices, description.kind):
            if isinstance(device.capabilities, typed) and description.exists_fn(
                device.capabilities
            ):
                yield device, description


@callback
def async_setup_device_entities(
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    factory: EntityFactory,
) -> None:
    """Add a platform's entities for the agent's devices now, and for devices it adds later.

    The connection learns which entities each device got, so that it can remove them from the
    registry when the agent stops reporting the device (AgentConnection.async_devices_changed).
    """
    connection = entry.runtime_data
    platform = async_get_current_platform().domain

    @callback
    def add(devices: list[AgentDevice]) -> None:
        entities = list(factory(connection, devices))
        for entity in entities:
            assert entity.unique_id is not None
            connection.entity_unique_ids.setdefault(entity.device_id, set()).add(entity.unique_id)
        async_add_entities(entities)

    connection.async_add_device_adder(platform, add)


class PiSecureWsEntity(Entity):
    """Pushed state, available while the session is up and the agent reports the device."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, connection: AgentConnection, device_id: str, key: str) -> None:
        self.connection = connection
        self.device_id = device_id
        self._attr_unique_id = f"{connection.agent_id}_{device_id}_{key}"
        self._attr_device_info = connection.device_info

    @property
    def available(self) -> bool:
        return self.connection.connected and self.device_id in self.connection.states

    def state_as(self, kind_state: type[StateT]) -> StateT | None:
        """The device's latest state, typed; None while the device has none (or another kind's)."""
        state = self.connection.states.get(self.device_id)
        return state if isinstance(state, kind_state) else None

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(
            self.connection.async_add_listener(self.device_id, self._handle_device_update)
        )

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
