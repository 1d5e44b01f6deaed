"""The interface every device kind implements, and what an action may return.

The server knows devices only through this module: it looks up an action, checks the caller's role
against it, validates the parameters with the action's voluptuous schema, calls the handler, and
pushes ``state()`` to every client whenever a device calls ``notify_state()``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import voluptuous as vol
from pi_secure_ws_protocol.const import Role

from pi_agent.errors import DeviceError as DeviceError  # noqa: PLC0414 - re-exported
from pi_agent.errors import Refused as Refused  # noqa: PLC0414 - for the devices
from pi_agent.memory_budget import MemoryBudget

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallContext:
    """Who is calling: for logs and for actions whose answer depends on the caller."""

    client_id: str
    role: Role
    source: str


@dataclass(frozen=True)
class BinaryResult:
    """An answer carried in a binary frame (a JPEG snapshot or thumbnail)."""

    data: bytes
    content_type: str = "image/jpeg"
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class StreamResult:
    """A stream of binary frames the session sends until the client stops it or it ends.

    ``frames`` yields the next payload whenever one is ready; the session pulls one frame at a time,
    so a slow client gets fewer frames, never a growing buffer. The session calls ``close`` when the
    stream stops for any reason.
    """

    frames: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]
    content_type: str = "image/jpeg"
    meta: Mapping[str, Any] = field(default_factory=dict)


ActionResult = Mapping[str, Any] | BinaryResult | StreamResult | None
Handler = Callable[[dict[str, Any], CallContext], Awaitable[ActionResult]]


@dataclass(frozen=True)
class Action:
    """One thing a client may ask a device to do."""

    name: str
    handler: Handler
    # Parameters, validated before the handler sees them; errors name the key and the problem.
    schema: vol.Schema = field(default_factory=lambda: vol.Schema({}))
    role: Role = Role.CONTROL
    # Makes the agent decode, encode or start a pipeline (thumbnail, snapshot, stream, upload):
    # counted against the client's costly-call budget (limits.costly_calls_per_second).
    costly: bool = False


@dataclass(frozen=True)
class DeviceContext:
    """What device factories get: the pin factory, where to keep state, and whether it is mock."""

    pin_factory: Any  # a gpiozero Factory (MockFactory with PWM pins when hardware = "mock")
    state_dir: Path
    mock: bool
    config_dir: Path
    # The pin factory and gpiochip in use, for the system device's diagnostics.
    gpio: Mapping[str, Any] = field(default_factory=dict)
    # The agent's one memory budget, shared with the server (None: unbounded, in unit tests).
    memory: MemoryBudget | None = None


class Device(ABC):
    """One device the agent offers. Subclasses set ``kind`` and implement the abstract methods."""

    kind: ClassVar[str]
    # Stop order by safety, lowest first: below 50 the device holds outputs that must go off
    # before anything else stops (sprinklers 0, lights 10); the rest stop together after.
    stop_rank: ClassVar[int] = 50

    def __init__(self, device_id: str, name: str) -> None:
        self.id = device_id
        self.name = name
        self._listeners: list[Callable[[Device], None]] = []

    @abstractmethod
    def capabilities(self) -> dict[str, Any]:
        """Static facts a client needs to build its UI (dimmable, max run time...). JSON-able."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """The current state, JSON-able. Cheap: called on every push."""

    @abstractmethod
    def actions(self) -> Mapping[str, Action]:
        """The actions this device accepts, by name."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Start background work (timers, render loops). Called once the event loop runs."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Leave the hardware safe (valves closed) and stop background work. Must not raise."""

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "capabilities": self.capabilities(),
        }

    def add_listener(self, listener: Callable[[Device], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def notify_state(self) -> None:
        """Tell the server the state changed; it pushes ``state()`` to every client."""
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:
                _LOGGER.exception("state listener of %s failed", self.id)
