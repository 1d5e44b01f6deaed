"""The edge where a client decodes the agent's devices, once, as they arrive.

A device whose capabilities or state do not have the shape its kind promises is *unusable*: it is
left out (its capabilities) or has no state (a bad state, until a good one comes), with one
warning per device each time it goes bad, never one per push. The other devices of the session
go on: one bad device must not take the whole agent away from its user.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ProtocolError
from .registry import Capabilities, DeviceState, decode_capabilities, decode_state

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    """One device of ``hello.devices``, its capabilities typed by its kind."""

    id: str
    kind: str
    name: str
    capabilities: Capabilities

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "capabilities": self.capabilities.to_wire(),
        }


class DeviceDecoder:
    """Decodes one client's devices and states, and remembers which devices are unusable."""

    def __init__(self, logger: logging.Logger = _LOGGER) -> None:
        self._logger = logger
        self._kinds: dict[str, str] = {}
        # Device id -> why it cannot be used now (rebuilt from every hello).
        self.unusable: dict[str, str] = {}
        # The devices warned about: no new warning until one has been good again.
        self._warned: set[str] = set()

    def devices(self, wire_devices: Iterable[Mapping[str, Any]]) -> dict[str, DeviceInfo]:
        """A hello's devices (already checked to have string ids, kinds and names)."""
        devices: dict[str, DeviceInfo] = {}
        self._kinds = {}
        self.unusable = {}
        listed = set()
        for wire in wire_devices:
            device_id = wire["id"]
            listed.add(device_id)
            try:
                capabilities = decode_capabilities(wire["kind"], wire["capabilities"])
            except ProtocolError as err:
                self._went_bad(device_id, f"its capabilities: {err}")
                continue
            self._kinds[device_id] = wire["kind"]
            devices[device_id] = DeviceInfo(device_id, wire["kind"], wire["name"], capabilities)
        self._warned &= listed
        return devices

    def state(self, device_id: str, wire: Mapping[str, Any]) -> DeviceState | None:
        """A device's state; None when it cannot be read (the device has no state until one can).

        A device the hello did not describe (or described badly) has no usable state either.
        """
        kind = self._kinds.get(device_id)
        if kind is None:
            self._logger.debug("ignoring a state of device %r: no usable description", device_id)
            return None
        try:
            state = decode_state(kind, wire)
        except ProtocolError as err:
            self._went_bad(device_id, f"its state: {err}")
            return None
        self.unusable.pop(device_id, None)
        if device_id in self._warned:
            self._warned.discard(device_id)
            self._logger.info("device %r of the agent is readable again", device_id)
        return state

    def states(self, wire_states: Mapping[str, Mapping[str, Any]]) -> dict[str, DeviceState]:
        """Every readable state of a hello or a get_states answer, by device id."""
        states: dict[str, DeviceState] = {}
        for device_id, wire in wire_states.items():
            state = self.state(device_id, wire)
            if state is not None:
                states[device_id] = state
        return states

    def _went_bad(self, device_id: str, reason: str) -> None:
        self.unusable[device_id] = reason
        if device_id in self._warned:
            self._logger.debug("device %r is still unusable: %s", device_id, reason)
            return
        self._warned.add(device_id)
        self._logger.warning(
            "device %r of the agent is unusable, the others go on: %s", device_id, reason
        )
