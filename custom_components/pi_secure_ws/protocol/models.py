"""What the client hands out: the agent's hello, its devices, binary answers and session events.

Plain frozen values, parsed once from validated messages; nothing here does I/O. Devices are
typed by kind (``devices/``): decoded once, here at the edge, by the client's DeviceDecoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .devices import DeviceDecoder, DeviceInfo, DeviceState


@dataclass(frozen=True)
class Hello:
    agent_id: str
    name: str
    version: str
    model: str | None
    client_id: str
    role: str
    # The usable devices, capabilities and states typed by kind (see devices/decoder.py).
    devices: dict[str, DeviceInfo]
    states: dict[str, DeviceState]
    raw: dict[str, Any] = field(repr=False, compare=False)
    # Device id -> why the device cannot be used (what of it does not have its kind's shape).
    unusable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BinaryPayload:
    """A binary answer (a JPEG snapshot or thumbnail) and its header."""

    header: dict[str, Any]
    data: bytes


@dataclass(frozen=True)
class StateChanged:
    device: str
    # None: the agent sent a state this client cannot read; the device has none until it can.
    state: DeviceState | None


@dataclass(frozen=True)
class Connected:
    hello: Hello


@dataclass(frozen=True)
class Disconnected:
    error: Exception | None


ClientEvent = StateChanged | Connected | Disconnected
Listener = Callable[[ClientEvent], None]


def parse_hello(data: dict[str, Any], decoder: DeviceDecoder) -> Hello:
    """The hello of a validated ``hello`` message, its devices decoded by ``decoder``."""
    agent = data["agent"]
    session = data["session"]
    devices = decoder.devices(data["devices"])
    states = decoder.states(data["states"])
    return Hello(
        agent_id=agent["id"],
        name=agent["name"],
        version=agent["version"],
        model=agent.get("model"),
        client_id=session["client_id"],
        role=session["role"],
        devices=devices,
        states=states,
        raw=data,
        unusable=dict(decoder.unusable),
    )
