"""The base of every entity: an agent device (or a part of it) on the Pi's device."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from homeassistant.core import callback
from homeassistant.helpers.entity import Entity

from .connection import AgentConnection
from .protocol.client import DeviceInfo as AgentDevice


class DeviceDescription(Protocol):
    """An entity description for one device kind, present when the capabilities allow it."""

    @property
    def kind(self) -> str: ...

    @property
    def exists_fn(self) -> Callable[[dict[str, Any]], bool]: ...


DescriptionT = TypeVar("DescriptionT", bound=DeviceDescription)


def described_devices(
    connection: AgentConnection, descriptions: Iterable[DescriptionT]
) -> Iterator[tuple[AgentDevice, DescriptionT]]:
    """Each (device, description) pair the agent reports: only what exists gets an entity."""
    for description in descriptions:
        for device in connection.devices_of_kind(description.kind):
            if description.exists_fn(device.capabilities):
                yield device, description


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

    @property
    def device_state(self) -> dict[str, Any]:
        return self.connection.states.get(self.device_id, {})

    @property
    def capabilities(self) -> dict[str, Any]:
        device = self.connection.hello.devices.get(self.device_id)
        return device.capabilities if device is not None else {}

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(
            self.connection.async_add_listener(self.device_id, self._handle_device_update)
        )

    @callback
    def _handle_device_update(self) -> None:
        self.async_write_ha_state()

    async def async_call(
        self, action: str, params: dict[str, Any] | None = None, *, device_id: str | None = None
    ) -> Any:
        return await self.connection.async_call(device_id or self.device_id, action, params)
