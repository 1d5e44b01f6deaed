"""AgentClient: the HA-free asyncio client of a pi_secure_ws agent.

It connects over TLS 1.3, checks the agent's certificate authority against the pinned fingerprint
before it sends any login message, logs in with SCRAM-SHA-256-PLUS bound to the agent's
certificate, checks the agent's own proof, then sends commands and receives pushed state. ``run()``
keeps the session up: reconnects with exponential back-off and jitter and resynchronises state, but
never retries a refused login on its own (it would only trip the agent's block list).

The jobs live apart: ``handshake`` opens and logs in, ``session`` carries one connection's
requests, pushes and streams, ``reconnect`` decides when to try again, ``models`` holds what the
client hands out (re-exported here, so ``from .client import Hello`` keeps working).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection

from . import messages as m
from .devices import DeviceDecoder, DeviceInfo, DeviceState
from .errors import Blocked, CannotConnect, PiSecureWsError, ProtocolError
from .handshake import Handshake, Target
from .models import (
    BinaryPayload,
    ClientEvent,
    Connected,
    Disconnected,
    Hello,
    Listener,
    StateChanged,
)
from .reconnect import ReconnectPolicy
from .session import ClientStream, Session, abort

__all__ = [
    "AgentClient",
    "BinaryPayload",
    "ClientEvent",
    "ClientStream",
    "Connected",
    "DeviceInfo",
    "Disconnected",
    "Hello",
    "Listener",
    "StateChanged",
]

_LOGGER = logging.getLogger(__name__)


class AgentClient:
    """One logical session with one agent."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        secret: str,
        fingerprint: str | None,
        ca_pem: str | None = None,
        connect_timeout: float = 10.0,
        request_timeout: float = 10.0,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self._secret = secret
        # None means trust on first use: connect() records what the agent presented.
        self.fingerprint = fingerprint
        self.ca_pem = ca_pem
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.hello: Hello | None = None
        self.states: dict[str, DeviceState] = {}
        self._decoder = DeviceDecoder(_LOGGER)
        self._handshake = Handshake(self._decoder)
        self._session: Session | None = None
        self._ids = itertools.count(1)
        self._listeners: list[Listener] = []
        self._closing = False
        self._closed = asyncio.Event()
        self._last_error: Exception | None = None
        self._last_close_code: int | None = None
        self._disconnected = asyncio.Event()
        self.stats = {"connects": 0, "disconnects": 0, "requests": 0}

    # ---- public API ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._session is not None and self._session.alive

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    async def connect(self) -> Hello:
        """Connect and log in once. Raises a typed error; never retries on its own."""
        if self.connected:
            assert self.hello is not None
            return self.hello
        self._closing = False
        self._closed.clear()
        target = Target(
            self.host, self.port, self.client_id, self._secret, self.fingerprint, self.ca_pem
        )
        try:
            async with asyncio.timeout(self.connect_timeout):
                ws = await self._handshake.open(target)
                try:
                    login = await self._handshake.login(ws, target)
                except BaseException:
                    await abort(ws)
                    raise
        except TimeoutError:
            raise CannotConnect(f"timed out connecting to {self.host}:{self.port}") from None
        self.fingerprint, self.ca_pem = login.fingerprint, login.ca_pem
        hello = login.hello
        self.hello = hello
        self.states = dict(hello.states)
        self._disconnected.clear()
        self._session = Session(
            ws,
            ids=self._ids,
            stats=self.stats,
            request_timeout=self.request_timeout,
            on_state=self._on_state,
            on_end=self._on_end,
            peer=f"{self.host}:{self.port}",
        )
        self._session.start()
        self.stats["connects"] += 1
        self._emit(Connected(hello))
        return hello

    async def call(
        self,
        device: str,
        action: str,
        params: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-request deadline is the API
        data: bytes | None = None,
    ) -> Any:
        """Run an action; returns its JSON result or a BinaryPayload. Raises CommandError."""
        return await self._request(
            m.CALL, device=device, action=action, params=params or {}, timeout=timeout, data=data
        )

    async def get_states(self) -> dict[str, DeviceState]:
        result = await self._request(m.GET_STATES)
        wire = result.get("states") if isinstance(result, dict) else None
        if not isinstance(wire, dict) or not all(isinstance(v, dict) for v in wire.values()):
            raise ProtocolError("the agent answered get_states without an object of states")
        self.states = self._decoder.states(wire)
        return dict(self.states)

    async def ping(self) -> None:
        await self._request(m.PING)

    async def stream(
        self, device: str, action: str, params: dict[str, Any] | None = None
    ) -> ClientStream:
        session = self._session
        result = await self.call(device, action, params)
        if not isinstance(result, dict) or not isinstance(result.get("stream"), int):
            raise ProtocolError(f"{device}.{action} did not start a stream")
        assert session is not None  # the call was answered on it
        return session.add_stream(result["stream"], result)

    async def run(self) -> None:
        """Stay connected until close(). Returns on close; raises InvalidAuth, Blocked never
        (it waits), CertificateMismatch and ServerAuthFailed (a user must act on those)."""
        policy = ReconnectPolicy(
            self.min_backoff, self.max_backoff, clock=asyncio.get_running_loop().time
        )
        while not self._closing:
            if not self.connected:
                try:
                    await self.connect()
                    policy.connected()
                except PiSecureWsError as err:
                    delay = policy.delay_after(err)
                    if delay is None:
                        self._emit(Disconnected(err))
                        raise
                    if not isinstance(err, Blocked):
                        _LOGGER.debug("connect to %s:%s failed: %s", self.host, self.port, err)
                    await self._sleep(delay)
                    continue
            await self._disconnected.wait()
            error = self._last_error
            if not self._closing and not policy.may_reconnect(error, self._last_close_code):
                assert error is not None
                raise error

    async def close(self) -> None:
        self._closing = True
        self._closed.set()
        self._disconnected.set()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # ---- session events ------------------------------------------------------------------

    @property
    def _ws(self) -> ClientConnection | None:
        """The live connection, if any (tests reach the socket through it)."""
        return self._session.ws if self._session is not None else None

    @property
    def _pending(self) -> dict[int, asyncio.Future[Any]]:
        return self._session.pending if self._session is not None else {}

    async def _request(
        self,
        type_: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-request deadline is the API
        data: bytes | None = None,
        **fields: Any,
    ) -> Any:
        session = self._session
        if session is None or not session.alive:
            raise CannotConnect("not connected to the agent")
        return await session.request(
            type_, timeout=timeout or self.request_timeout, data=data, **fields
        )

    def _on_state(self, device: str, wire: dict[str, Any]) -> None:
        state = self._decoder.state(device, wire)
        if state is not None:
            self.states[device] = state
        elif device in self._decoder.unusable:
            self.states.pop(device, None)  # unreadable: the device has no state until it can
        else:
            return  # a device the hello did not describe
        self._emit(StateChanged(device, state))

    def _on_end(self, session: Session, error: Exception | None) -> None:
        if self._session is session:
            self._session = None
        self.stats["disconnects"] += 1
        self._last_error = error
        self._last_close_code = session.close_code
        self._disconnected.set()
        if not self._closing:
            self._emit(Disconnected(error))

    def _emit(self, event: ClientEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                _LOGGER.exception("client listener failed")

    async def _sleep(self, seconds: float) -> None:
        # Wakes early when close() is called.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closed.wait()
