"""What the client hands out: the agent's hello, its devices, binary answers and session events.

Plain frozen values, parsed once from validated messages; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DeviceInfo:
    id: str
    kind: str
    name: str
    capabilities: dict[str, Any]


@dataclass(frozen=True)
class Hello:
    agent_id: str
    name: str
    version: str
    model: str | None
    client_id: str
    role: str
    devices: dict[str, DeviceInfo]
    states: dict[str, dict[str, Any]]
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class BinaryPayload:
    """A binary answer (a JPEG snapshot or thumbnail) and its header."""

    header: dict[str, Any]
    data: bytes


@dataclass(frozen=True)
class StateChanged:
    device: str
    state: dict[str, Any]


@dataclass(frozen=True)
class Connected:
    hello: Hello


@dataclass(frozen=True)
class Disconnected:
    error: Exception | None


ClientEvent = StateChanged | Connected | Disconnected
Listener = Callable[[ClientEvent], None]


def parse_hello(data: dict[str, Any]) -> Hello:
    """The hello of a validated ``hello`` message."""
    agent = data["agent"]
    session = data["session"]
    devices = {
        d["id"]: DeviceInfo(d["id"], d["kind"], d["name"], dict(d["capabilities"]))
        for d in data["devices"]
    }
    return Hello(
        agent_id=agent["id"],
        name=agent["name"],
        version=agent["version"],
        model=agent.get("model"),
        client_id=session["client_id"],
        role=session["role"],
        devices=devices,
        states=dict(data["states"]),
        raw=data,
    )
