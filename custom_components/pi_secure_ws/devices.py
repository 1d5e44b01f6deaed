"""The devices of an entry's session, and the entities made for them.

The connection keeps one ``AgentDevices``: a device object per device the agent reports, the
platforms' adders for devices the agent adds later, and the registry clean-up for devices it
stops reporting (while connected, or while Home Assistant was away).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from .const import LOGGER
from .device import PiDevice, Zone
from .protocol.client import Hello
from .protocol.devices import Capabilities, DeviceState

# What a device's entities are built from, by device id.
Layout = dict[str, tuple[str, Capabilities]]


def hello_layout(hello: Hello) -> Layout:
    return {d.id: (d.kind, d.capabilities) for d in hello.devices.values()}


class AgentDevices(Mapping[str, PiDevice]):
    """The device objects by device id, in the order the agent reports them."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        read_state: Callable[[str], DeviceState | None],
    ) -> None:
        self._hass = hass
        self._entry = entry
        self._read_state = read_state
        self._devices: dict[str, PiDevice] = {}
        # Per platform set up: adds that platform's entities for devices the agent adds.
        self._adders: list[Callable[[list[PiDevice]], None]] = []
        self._platforms: set[str] = set()

    def __getitem__(self, device_id: str) -> PiDevice:
        return self._devices[device_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._devices)

    def __len__(self) -> int:
        return len(self._devices)

    @property
    def layout(self) -> Layout:
        return {key: device.layout for key, device in self._devices.items()}

    def of_kind(self, kind: str) -> list[PiDevice]:
        return [device for device in self._devices.values() if device.kind == kind]

    def zone_of_valve(self, unique_id: str) -> tuple[PiDevice, Zone] | None:
        """The device and zone of the zone valve with this unique id (a valve is keyed by its
        zone's key), None for any other entity."""
        for device in self._devices.values():
            for zone in device.zones.values():
                if device.unique_id(zone.key) == unique_id:
                    return device, zone
        return None

    def add_new(self, hello: Hello) -> list[PiDevice]:
        """Objects for the devices of ``hello`` not known yet."""
        added = [
            PiDevice(hello.agent_id, info, self._read_state)
            for key, info in hello.devices.items()
            if key not in self._devices
        ]
        self._devices.update((device.id, device) for device in added)
        return added

    @callback
    def async_follow(self, hello: Hello) -> None:
        """A new session's device list: entities for the devices added, none for those gone.

        Only for devices whose layout did not change (a changed one needs a reload).
        """
        removed = self._devices.keys() - hello.devices.keys()
        added = self.add_new(hello)
        if not (added or removed):
            return
        LOGGER.info(
            "%s added devices %s and removed %s",
            self._entry.title,
            [device.id for device in added],
            sorted(removed),
        )
        self._async_remove_entities({uid for d in removed for uid in self._forget(d)})
        for add in self._adders:
            add(added)

    @callback
    def async_add_adder(self, platform: str, add: Callable[[list[PiDevice]], None]) -> None:
        """A platform set up: add its entities for the devices reported now, and later ones."""
        self._platforms.add(platform)
        self._adders.append(add)
        add(list(self._devices.values()))

    @callback
    def async_remove_stale_entities(self) -> None:
        """After setup: remove registry entries of entities no reported device has any more
        (devices removed from agent.toml while Home Assistant was not connected)."""
        known = {uid for device in self._devices.values() for uid in device.entity_unique_ids}
        registry = er.async_get(self._hass)
        stale = {
            registry_entry.unique_id
            for registry_entry in er.async_entries_for_config_entry(registry, self._entry.entry_id)
            # Only platforms that set up said what they provide.
            if registry_entry.domain in self._platforms and registry_entry.unique_id not in known
        }
        self._async_remove_entities(stale)

    @callback
    def async_notify(self, device_id: str) -> None:
        if (device := self._devices.get(device_id)) is not None:
            device.async_notify()

    @callback
    def async_notify_all(self) -> None:
        for device in list(self._devices.values()):
            device.async_notify()

    @callback
    def async_forget_listeners(self) -> None:
        for device in self._devices.values():
            device.async_forget_listeners()

    def _forget(self, device_id: str) -> set[str]:
        """Drop a device the agent no longer reports; the unique ids of its entities."""
        device = self._devices.pop(device_id)
        device.async_forget_listeners()
        return device.entity_unique_ids

    @callback
    def _async_remove_entities(self, unique_ids: set[str]) -> None:
        if not unique_ids:
            return
        registry = er.async_get(self._hass)
        for registry_entry in er.async_entries_for_config_entry(registry, self._entry.entry_id):
            if registry_entry.unique_id in unique_ids:
                LOGGER.debug("Removing %s: its device is gone", registry_entry.entity_id)
                registry.async_remove(registry_entry.entity_id)
