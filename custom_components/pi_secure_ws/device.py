"""The agent's devices as the entities see them: one object per device, owned by the connection.

Built from the hello and kept while the agent reports the device. An entity reads its device's
description and state here and listens here for changes; the entities of one device meet here,
not in dicts on the connection (a zone's run time is set by its number entity and used by its
valve). The connection learns here which entities a device has, to remove them with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.core import CALLBACK_TYPE, callback

from .protocol.devices import (
    Capabilities,
    DeviceInfo,
    DeviceState,
    SprinklerCapabilities,
    sprinklers,
)

# A zone the agent declares without a default runs this long when its valve opens.
FALLBACK_ZONE_SECONDS = 600


@dataclass
class Zone:
    """One sprinkler zone: what the controller declares, and the run time Home Assistant keeps."""

    id: str
    name: str
    default_seconds: int
    max_seconds: float | None
    # What opening the zone's valve runs it for; the zone's run-time number changes it.
    run_seconds: int

    @classmethod
    def from_capabilities(cls, zone: sprinklers.Zone) -> Zone:
        default = int(zone.default_seconds or FALLBACK_ZONE_SECONDS)
        return cls(
            id=zone.id,
            name=zone.name or zone.id,
            default_seconds=default,
            max_seconds=float(zone.max_seconds) if zone.max_seconds else None,
            run_seconds=default,
        )

    @property
    def key(self) -> str:
        """The part of its entities' unique ids that names the zone."""
        return f"zone_{self.id}"


class PiDevice:
    """One device the agent reports: its description, its state, who listens to it."""

    def __init__(
        self,
        agent_id: str,
        info: DeviceInfo,
        read_state: Callable[[str], DeviceState | None],
    ) -> None:
        self.agent_id = agent_id
        self.info = info
        self._read_state = read_state
        declared = (
            info.capabilities.zones if isinstance(info.capabilities, SprinklerCapabilities) else ()
        )
        self.zones: dict[str, Zone] = {
            zone.id: zone for zone in (Zone.from_capabilities(item) for item in declared)
        }
        # The unique ids of the entities made for this device, disabled ones included.
        self.entity_unique_ids: set[str] = set()
        self._listeners: list[CALLBACK_TYPE] = []

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def capabilities(self) -> Capabilities:
        """Typed by the device's kind (the client decoded them)."""
        return self.info.capabilities

    @property
    def layout(self) -> tuple[str, Capabilities]:
        """What the device's entities are built from: a change needs them built again."""
        return (self.info.kind, self.info.capabilities)

    @property
    def state(self) -> DeviceState | None:
        """The latest state the agent pushed, typed; None while it has sent none (or an
        unreadable one)."""
        return self._read_state(self.id)

    def unique_id(self, key: str) -> str:
        """The unique id of this device's entity ``key``: stable across sessions and renames."""
        return f"{self.agent_id}_{self.id}_{key}"

    @callback
    def async_add_listener(self, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call ``update`` when the device's state or the connection changes."""
        self._listeners.append(update)

        @callback
        def remove() -> None:
            if update in self._listeners:
                self._listeners.remove(update)

        return remove

    @callback
    def async_notify(self) -> None:
        for update in list(self._listeners):
            update()

    @callback
    def async_forget_listeners(self) -> None:
        self._listeners.clear()
