"""The agent's WSS server: admission at TCP accept, TLS, upgrade checks, login, sessions.

Order of defences for each connection, cheapest first:
1. TCP accept: per-source and total limits on unauthenticated sockets, and sources already told
   about their block are dropped before any TLS work. A deadline starts here: a socket that has not
   logged in ``login_timeout`` seconds later is aborted, whatever stage it stalls in.
2. TLS 1.3 handshake (done here, not by asyncio's server, so the deadline covers it).
3. HTTP upgrade: query strings (400, a credential-leak risk), wrong path (404), blocked sources
   (429 with Retry-After), foreign Origin (403, by websockets), missing subprotocol (400).
4. Login: SCRAM-SHA-256-PLUS bound to the certificate; text frames of at most 4 KiB until then.
5. Session: role checks, schema checks, rate limit, message size cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar, cast

import voluptuous as vol
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.binary import decode_frame, encode_frame
from pi_secure_ws_protocol.const import (
    MECHANISM,
    PATH,
    PROTOCOL_VERSION,
    SUBPROTOCOL,
    CloseCode,
    Role,
)
from pi_secure_ws_protocol.errors import ProtocolError
from pi_secure_ws_protocol.pinning import tls_server_end_point
from pi_secure_ws_protocol.scram import ScramFailed, ServerExchange, Verifier
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import __version__
from .blocklist import BlockList
from .devices.base import (
    BinaryResult,
    CallContext,
    Device,
    DeviceError,
    Refused,
    StreamResult,
)

_LOGGER = logging.getLogger(__name__)

MAX_TEXT_MESSAGE = 256 * 1024  # JSON after login; larger payloads travel in binary frames
MAX_IN_FLIGHT = 16  # concurrent requests per session


@dataclass(frozen=True)
class ServerLimits:
    login_timeout: float = 5.0
    max_unauthenticated: int = 32
    max_unauthenticated_per_source: int = 4
    prelogin_max_frame: int = 4096
    max_message_size: int = 16 * 1024 * 1024
    messages_per_second: float = 50.0


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    name: str
    model: str | None = None


class ThrottledLog:
    """At most ``per_second`` lines a second: a flood must not fill the SD card with its log.

    What is dropped is counted and reported with the next line that gets through.
    """

    def __init__(self, logger: logging.Logger, per_second: int = 20) -> None:
        self._logger = logger
        self._per_second = per_second
        self._window = 0
        self._count = 0
        self._dropped = 0

    def log(self, level: int, message: str, *args: Any) -> None:
        now = int(time.monotonic())
        if now != self._window:
            self._window, self._count = now, 0
        self._count += 1
        if self._count > self._per_second:
            self._dropped += 1
            return
        if self._dropped:
            self._logger.warning("%d similar lines dropped during a burst", self._dropped)
            self._dropped = 0
        self._logger.log(level, message, *args)


class ClientDirectory:
    """What the server needs of the credential store; the app swaps it on SIGHUP."""

    def __init__(
        self,
        lookup: Callable[[str], tuple[Verifier, bool]],
        role_of: Callable[[str], Role | None],
    ) -> None:
        self.lookup = lookup
        self.role_of = role_of


class AgentServer:
    def __init__(
        self,
        *,
        identity: AgentIdentity,
        ssl_context: Any,
        ca_pem: str,
        leaf_der: bytes,
        clients: ClientDirectory,
        devices: list[Device],
        blocklist: BlockList,
        limits: ServerLimits,
        allowed_origins: tuple[str, ...] = (),
        host: str = "0.0.0.0",  # noqa: S104 - the agent serves the LAN
        port: int = 0,
    ) -> None:
        self.identity = identity
        self.ssl_context = ssl_context
        self.ca_pem = ca_pem
        self.leaf_der = leaf_der
        self.clients = clients
        self.devices: dict[str, Device] = {d.id: d for d in devices}
        self.blocklist = blocklist
        self.limits = limits
        self.allowed_origins = allowed_origins
        self.host = host
        self.port = port
        self.sessions: set[Session] = set()
        self.unauthenticated = 0
        self._per_source: defaultdict[str, int] = defaultdict(int)
        self._reserved: set[str] = set()
        self._server: Server | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self.stats = {"logins": 0, "login_failures": 0, "refused": 0}
        self.flood_log = ThrottledLog(_LOGGER)
        self.accepting_commands = True

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        origins: list[Any] = [None, *self.allowed_origins]

        # websockets instantiates this class at each TCP accept; it carries this server along.
        connection_class = cast(
            "type[ServerConnection]",
            type("BoundGatedConnection", (GatedConnection,), {"agent": self}),
        )

        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            create_connection=connection_class,
            process_request=self._process_request,
            origins=origins,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            compression=None,  # compression of secrets next to attacker data leaks them
            server_header=None,  # no version banner
            max_size=self.limits.prelogin_max_frame,
            open_timeout=None,  # the login deadline from TCP accept covers the upgrade
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
        )
        sockets = self._server.sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]
        for device in self.devices.values():
            self._unsubscribe.append(device.add_listener(self._device_changed))
        _LOGGER.info("listening on %s:%s (TLS 1.3, %s)", self.host, self.port, MECHANISM)

    def stop_accepting(self) -> None:
        """The first step of a stop: refuse every further device call (answered "refused") and
        new connections, at once and without waiting, so no command switches a relay back on
        while the agent switches them off. ``stop()`` closes the sessions later."""
        self.accepting_commands = False
        if self._server is not None:
            # The listening sockets only (asyncio's server); websockets' close() comes in stop().
            self._server.server.close()

    async def stop(self) -> None:
        """Close every session with 1001 going away so clients reconnect later."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._server is not None:
            self._server.close(close_connections=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    await self._server.wait_closed()
        self.blocklist.save()

    def revoke(self, still_valid: Callable[[str, Role], bool]) -> int:
        """Close the sessions whose client was removed, rotated or changed role."""
        closed = 0
        for session in list(self.sessions):
            if not still_valid(session.client_id, session.role):
                _LOGGER.warning(
                    "closing session of client %s from %s: credentials changed",
                    session.client_id,
                    session.source,
                )
                session.close_soon(CloseCode.CREDENTIALS_REVOKED, "credentials revoked")
                closed += 1
        return closed

    @property
    def leaf_der(self) -> bytes:
        return self._leaf_der

    @leaf_der.setter
    def leaf_der(self, der: bytes) -> None:
        # The channel binding every login checks: computed once per certificate.
        self._leaf_der = der
        self.channel_binding = tls_server_end_point(der)

    # ---- admission at TCP accept ---------------------------------------------------------

    def admit(self, source: str) -> tuple[bool, str]:
        if self.blocklist.already_notified(source):
            return False, "blocked source (already told)"
        if self._per_source[source] >= self.limits.max_unauthenticated_per_source:
            return False, "too many unauthenticated connections from this source"
        if self.unauthenticated >= self.limits.max_unauthenticated:
            # A source that logged in before keeps one slot during a flood.
            if self.blocklist.is_known(source) and source not in self._reserved:
                self._reserved.add(source)
                self._per_source[source] += 1
                self.unauthenticated += 1
                return True, "reserved"
            return False, "too many unauthenticated connections"
        self._per_source[source] += 1
        self.unauthenticated += 1
        return True, ""

    def release(self, source: str, reserved: bool) -> None:
        self.unauthenticated -= 1
        self._per_source[source] -= 1
        if self._per_source[source] <= 0:
            del self._per_source[source]
        if reserved:
            self._reserved.discard(source)

    # ---- upgrade -------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        source = _source(connection)
        if "?" in request.path:
            _LOGGER.warning(
                "refused %s: query string in the URL (credentials must never travel in a URL; "
                "they end up in logs and histories)",
                source,
            )
            self.stats["refused"] += 1
            return _reject(connection, HTTPStatus.BAD_REQUEST, "Query strings are not accepted.")
        if request.path != PATH:
            self.stats["refused"] += 1
            return _reject(connection, HTTPStatus.NOT_FOUND, "Not found.")
        retry = self.blocklist.retry_after(source)
        if retry is not None:
            self.blocklist.mark_notified(source)
            self.flood_log.log(
                logging.INFO, "refused %s: blocked for %.0f s after failed logins", source, retry
            )
            self.stats["refused"] += 1
            response = _reject(connection, HTTPStatus.TOO_MANY_REQUESTS, "Too many failed logins.")
            response.headers["Retry-After"] = str(math.ceil(retry))
            return response
        offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
        if SUBPROTOCOL not in [p.strip() for p in offered.split(",")]:
            self.stats["refused"] += 1
            return _reject(connection, HTTPStatus.BAD_REQUEST, f"Use subprotocol {SUBPROTOCOL}.")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.allowed_origins:
            _LOGGER.warning("refused %s: foreign Origin %r", source, origin[:100])
            self.stats["refused"] += 1
            return _reject(connection, HTTPStatus.FORBIDDEN, "Origin not allowed.")
        return None

    # ---- login ---------------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        assert isinstance(connection, GatedConnection)
        source = connection.source
        try:
            result = await self._login(connection)
        except ConnectionClosed as err:
            if err.sent is not None and err.sent.code == CloseCode.MESSAGE_TOO_BIG:
                # An oversized frame before login is probing, like any other garbage.
                self.stats["login_failures"] += 1
                self.blocklist.record_failure(source)
                _LOGGER.warning("login failed: %s sent an oversized frame before login", source)
            return
        if result is None:
            return
        client_id, role, server_final = result
        connection.authenticated()
        # After login the cap on messages applies instead of the 4 KiB pre-login one.
        connection.protocol.max_message_size = self.limits.max_message_size
        session = Session(self, connection, client_id, role, source)
        self.sessions.add(session)
        try:
            await session.run(server_final)
        finally:
            self.sessions.discard(session)
            _LOGGER.info(
                "closed session of client %s from %s (code %s)",
                client_id,
                source,
                connection.close_code,
            )

    async def _login(self, connection: GatedConnection) -> tuple[str, Role, str] | None:
        """Run the login; the client id, role and SCRAM server-final (not yet sent) on success."""
        source = connection.source
        await connection.send(m.encode(m.AUTH_START, mechanisms=[MECHANISM], ca=self.ca_pem))
        exchange = ServerExchange(connection.channel_binding, self.clients.lookup)
        try:
            first = await _recv_prelogin(connection, m.AUTH_CLIENT_FIRST)
            if first["mechanism"] != MECHANISM:
                raise ScramFailed(f"unsupported mechanism {first['mechanism'][:40]!r}")
            server_first = exchange.server_first(first["message"])
            await connection.send(m.encode(m.AUTH_SERVER_FIRST, message=server_first))
            final = await _recv_prelogin(connection, m.AUTH_CLIENT_FINAL)
            server_final = exchange.server_final(final["message"])
        except ScramFailed as err:
            await self._login_failed(connection, exchange.client_id, str(err))
            return None
        except ProtocolError as err:
            # Garbage before login counts as a failed login: it is probing, not a client.
            code = err.code if isinstance(err, PreloginViolation) else CloseCode.PROTOCOL_ERROR
            await self._login_failed(
                connection, exchange.client_id, str(err), code=code, reason=m.REASON_PROTOCOL
            )
            return None
        client_id = exchange.client_id or ""
        role = self.clients.role_of(client_id) if exchange.known else None
        if role is None:  # removed between lookup and now
            await self._login_failed(connection, client_id, "unknown client")
            return None
        self.blocklist.record_success(source)
        self.stats["logins"] += 1
        _LOGGER.info("login: client %s from %s as %s", client_id, source, role.label)
        return client_id, role, server_final

    async def _login_failed(
        self,
        connection: GatedConnection,
        client_id: str | None,
        why: str,
        *,
        code: int = CloseCode.INVALID_AUTH,
        reason: str = m.REASON_INVALID_AUTH,
    ) -> None:
        source = connection.source
        self.stats["login_failures"] += 1
        block = self.blocklist.record_failure(source)
        self.flood_log.log(
            logging.WARNING,
            "login failed: client %s from %s: %s (failures %d%s)",
            _printable(client_id),
            source,
            why,
            self.blocklist.failures(source),
            f", blocked for {block:.0f} s" if block else "",
        )
        # The same answer for an unknown client and a wrong proof: no user enumeration.
        with contextlib.suppress(ConnectionClosed):
            await connection.send(m.encode(m.AUTH_FAILED, reason=reason))
            await connection.close(code, reason.replace("_", " "))

    # ---- pushes --------------------------------------------------------------------------

    def _device_changed(self, device: Device) -> None:
        for session in self.sessions:
            session.mark_dirty(device.id)

    def hello(self, client_id: str, role: Role) -> str:
        return m.encode(
            m.HELLO,
            agent={
                "id": self.identity.agent_id,
                "name": self.identity.name,
                "version": __version__,
                "model": self.identity.model,
                "protocol": PROTOCOL_VERSION,
            },
            session={
                "client_id": client_id,
                "role": role.label,
                "max_message_size": self.limits.max_message_size,
            },
            devices=[d.describe() for d in self.devices.values()],
            states={d.id: d.state() for d in self.devices.values()},
        )


class GatedConnection(ServerConnection):
    """A websockets connection whose life starts at TCP accept, before TLS.

    websockets is given a plain TCP server; this class applies the admission limits, runs the TLS
    handshake itself and arms the login deadline, then hands the TLS transport to websockets.
    """

    agent: ClassVar[AgentServer]  # set on the per-server subclass made in AgentServer.start()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source = "?"
        self.channel_binding = b""
        self._admitted = False
        self._reserved = False
        self._deadline: asyncio.TimerHandle | None = None
        self._raw: asyncio.Transport | None = None
        self._tls_task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        self.source = str(peer[0]) if peer else "?"
        admitted, why = self.agent.admit(self.source)
        if not admitted:
            self.agent.stats["refused"] += 1
            self.agent.flood_log.log(logging.INFO, "refused %s at accept: %s", self.source, why)
            transport.abort()
            return
        self._admitted = True
        self._reserved = why == "reserved"
        self._raw = transport
        # Nothing may reach websockets before TLS is up.
        transport.pause_reading()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.agent.limits.login_timeout, self._deadline_passed)
        self._tls_task = loop.create_task(self._start_tls(transport))

    async def _start_tls(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        # The certificate this handshake serves; a renewal meanwhile would make the binding stale.
        self.channel_binding = self.agent.channel_binding
        try:
            tls = await loop.start_tls(
                transport,
                self,
                self.agent.ssl_context,
                server_side=True,
                ssl_handshake_timeout=self.agent.limits.login_timeout,
            )
        except (OSError, ConnectionError, TimeoutError, asyncio.CancelledError) as err:
            _LOGGER.debug("TLS handshake with %s failed: %s", self.source, err)
            transport.abort()
            self._release()
            return
        if tls is None or self.channel_binding != self.agent.channel_binding:
            # Closed meanwhile, or the leaf was renewed mid-handshake (the client retries).
            transport.abort()
            self._release()
            return
        super().connection_made(tls)

    def _deadline_passed(self) -> None:
        self._deadline = None
        if not self._admitted:
            return
        _LOGGER.info(
            "closed %s: no login within %.1f s of connecting",
            self.source,
            self.agent.limits.login_timeout,
        )
        if self._tls_task is not None and not self._tls_task.done():
            self._tls_task.cancel()
        transport = getattr(self, "transport", None) or self._raw
        if transport is not None:
            transport.abort()
        if self._raw is not None:
            self._raw.abort()
        self._release()

    def authenticated(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._release()

    def _release(self) -> None:
        if self._admitted:
            self._admitted = False
            self.agent.release(self.source, self._reserved)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._release()
        if hasattr(self, "transport"):
            super().connection_lost(exc)


class RateLimiter:
    """Token bucket: ``rate`` messages a second with bursts of twice that."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * 2)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@contextlib.contextmanager
def _corked(connection: ServerConnection) -> Iterator[None]:
    """Hold back what is written inside until the end, then send it together (Linux TCP_CORK)."""
    sock = connection.transport.get_extra_info("socket")
    cork = getattr(socket, "TCP_CORK", None)
    if sock is None or cork is None:
        yield
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, cork, 0)


class Session:
    """One logged-in client."""

    def __init__(
        self,
        agent: AgentServer,
        connection: GatedConnection,
        client_id: str,
        role: Role,
        source: str,
    ) -> None:
        self.agent = agent
        self.connection = connection
        self.client_id = client_id
        self.role = role
        self.source = source
        self.context = CallContext(client_id=client_id, role=role, source=source)
        self._dirty: dict[str, None] = {}
        self._dirty_event = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._streams: dict[int, asyncio.Task[None]] = {}
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._limiter = RateLimiter(agent.limits.messages_per_second)
        self._overruns = 0
        self._stream_ids = itertools.count(1)

    def mark_dirty(self, device_id: str) -> None:
        # Coalesced: a slow client gets the latest state of each device, never a backlog.
        self._dirty[device_id] = None
        self._dirty_event.set()

    def close_soon(self, code: int, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(self.connection.close(code, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, server_final: str) -> None:
        """End the login with the agent's proof and the hello, then serve until closed."""
        connection = self.connection
        pusher: asyncio.Task[None] | None = None
        try:
            # This session already tracks changes, so one made after the hello's snapshot is
            # pushed after it; pushes start only once the hello is out.
            hello = self.agent.hello(self.client_id, self.role)
            # The proof and the hello leave in one TCP segment: sent apart, the first wakes
            # the client, which can preempt the agent before the second is written.
            with _corked(connection):
                await connection.send(m.encode(m.AUTH_SERVER_FINAL, message=server_final))
                await connection.send(hello)
            pusher = asyncio.get_running_loop().create_task(self._push_states())
            async for frame in connection:
                if not self._limiter.allow():
                    self._overruns += 1
                    if self._overruns > self._limiter.capacity * 5:
                        _LOGGER.warning(
                            "closing client %s from %s: message flood",
                            self.client_id,
                            self.source,
                        )
                        await connection.close(CloseCode.POLICY_VIOLATION, "message flood")
                        break
                    await self._send_error(
                        _peek_request_id(frame), m.ERR_RATE_LIMITED, "too many messages"
                    )
                    continue
                self._overruns = 0
                await self._handle_frame(frame)
        except ConnectionClosed:
            pass
        finally:
            tasks = [*self._streams.values(), *self._tasks]
            if pusher is not None:
                tasks.append(pusher)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _start(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push_states(self) -> None:
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            dirty, self._dirty = self._dirty, {}
            for device_id in dirty:
                device = self.agent.devices.get(device_id)
                if device is None:
                    continue
                with contextlib.suppress(ConnectionClosed):
                    await self.connection.send(
                        m.encode(m.STATE, device=device_id, state=device.state())
                    )

    async def _handle_frame(self, frame: str | bytes) -> None:
        payload: bytes | None = None
        request_id: int | None = None
        try:
            if isinstance(frame, bytes):
                header, payload = decode_frame(frame)
                request_id = _request_id(header)
                message = m.validate(header, m.CLIENT_SCHEMAS)
            else:
                if len(frame) > MAX_TEXT_MESSAGE:
                    raise ProtocolError(
                        f"text message of {len(frame)} bytes is over {MAX_TEXT_MESSAGE}; "
                        "send bulk data in a binary frame"
                    )
                raw = m.parse_json(frame)
                request_id = _request_id(raw)
                message = m.validate(raw, m.CLIENT_SCHEMAS)
        except m.UnknownMessageType as err:
            await self._send_error(request_id, m.ERR_UNKNOWN_TYPE, str(err))
            return
        except ProtocolError as err:
            await self._send_error(request_id, m.ERR_INVALID_MESSAGE, str(err))
            return
        if message["type"] == m.CALL:
            # Device actions may take a while (a snapshot, a fade): run them beside the reader,
            # at most MAX_IN_FLIGHT at once, so one slow action does not stall the session.
            await self._in_flight.acquire()
            self._start(self._call_released(message, payload))
        else:
            await self._dispatch(message, payload)

    async def _call_released(self, message: dict[str, Any], payload: bytes | None) -> None:
        try:
            await self._call(message["id"], message, payload)
        finally:
            self._in_flight.release()

    async def _dispatch(self, message: dict[str, Any], payload: bytes | None) -> None:
        request_id: int = message["id"]
        type_ = message["type"]
        if type_ == m.PING:
            await self._send(m.encode(m.RESULT, id=request_id, data={}))
        elif type_ == m.GET_STATES:
            states = {d.id: d.state() for d in self.agent.devices.values()}
            await self._send(m.encode(m.RESULT, id=request_id, data={"states": states}))
        elif type_ == m.STREAM_STOP:
            task = self._streams.pop(message["stream"], None)
            if task is None:
                await self._send_error(request_id, m.ERR_UNKNOWN_STREAM, "no such stream")
                return
            task.cancel()
            await self._send(m.encode(m.RESULT, id=request_id, data={}))

    async def _call(self, request_id: int, message: dict[str, Any], payload: bytes | None) -> None:
        if not self.agent.accepting_commands:
            await self._send_error(request_id, m.ERR_REFUSED, "the agent is shutting down")
            return
        device = self.agent.devices.get(message["device"])
        if device is None:
            await self._send_error(
                request_id, m.ERR_UNKNOWN_DEVICE, f"no device {message['device']!r}"
            )
            return
        action = device.actions().get(message["action"])
        if action is None:
            await self._send_error(
                request_id,
                m.ERR_UNKNOWN_ACTION,
                f"{device.id} has no action {message['action']!r}; "
                f"it has: {', '.join(sorted(device.actions()))}",
            )
            return
        if self.role < action.role:
            _LOGGER.warning(
                "forbidden: client %s (%s) from %s asked %s.%s, which needs %s",
                self.client_id,
                self.role.label,
                self.source,
                device.id,
                action.name,
                action.role.label,
            )
            await self._send_error(
                request_id,
                m.ERR_FORBIDDEN,
                f"{device.id}.{action.name} needs the {action.role.label} role; "
                f"this client is {self.role.label}",
            )
            return
        params = dict(message["params"])
        if payload is not None:
            params["data"] = payload
        try:
            params = action.schema(params)
        except vol.Invalid as err:
            await self._send_error(request_id, m.ERR_INVALID_PARAMS, m.humanize(err))
            return
        try:
            result = await action.handler(params, self.context)
        except Refused as err:
            await self._send_error(request_id, m.ERR_REFUSED, str(err))
            return
        except vol.Invalid as err:
            await self._send_error(request_id, m.ERR_INVALID_PARAMS, m.humanize(err))
            return
        except DeviceError as err:
            _LOGGER.error("device %s failed on %s: %s", device.id, action.name, err)
            await self._send_error(request_id, m.ERR_DEVICE_ERROR, str(err))
            return
        except Exception:
            _LOGGER.exception("%s.%s raised", device.id, action.name)
            await self._send_error(request_id, m.ERR_INTERNAL, "the agent hit an internal error")
            return
        await self._send_result(request_id, result)

    async def _send_result(self, request_id: int, result: Any) -> None:
        if isinstance(result, BinaryResult):
            header = {
                "id": request_id,
                "content_type": result.content_type,
                **dict(result.meta),
            }
            await self._send(encode_frame(header, result.data))
        elif isinstance(result, StreamResult):
            # The session numbers streams itself: a client's reused request id cannot orphan one.
            stream_id = next(self._stream_ids)
            await self._send(
                m.encode(
                    m.RESULT,
                    id=request_id,
                    data={
                        "stream": stream_id,
                        "content_type": result.content_type,
                        **dict(result.meta),
                    },
                )
            )
            task = asyncio.get_running_loop().create_task(self._pump(stream_id, result))
            self._streams[stream_id] = task
            task.add_done_callback(lambda _t: self._streams.pop(stream_id, None))
        else:
            data = dict(result) if isinstance(result, Mapping) else {}
            await self._send(m.encode(m.RESULT, id=request_id, data=data))

    async def _pump(self, stream_id: int, stream: StreamResult) -> None:
        seq = 0
        reason = "ended"
        try:
            async for frame in stream.frames:
                seq += 1
                # send() waits for the socket: a slow client slows only its own pump, and the
                # device keeps just the newest frame for it.
                await self.connection.send(
                    encode_frame(
                        {"stream": stream_id, "seq": seq, "content_type": stream.content_type},
                        frame,
                    )
                )
        except ConnectionClosed:
            return
        except asyncio.CancelledError:
            reason = "stopped"
            raise
        except Exception as err:
            _LOGGER.warning("stream %d of %s failed: %s", stream_id, self.client_id, err)
            reason = f"failed: {err}"
        finally:
            with contextlib.suppress(Exception):
                await stream.close()
            if reason != "stopped":
                # The device ended it: say so, so the client does not wait for frames.
                await self._send(m.encode(m.STREAM_END, stream=stream_id, reason=reason))

    async def _send(self, data: str | bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.connection.send(data)

    async def _send_error(self, request_id: int | None, code: str, message: str) -> None:
        await self._send(m.encode(m.ERROR, id=request_id, code=code, message=message))


class PreloginViolation(ProtocolError):
    """Something other than the expected login message arrived before login."""

    def __init__(self, reason: str, code: int = CloseCode.PROTOCOL_ERROR) -> None:
        super().__init__(reason)
        self.code = code


async def _recv_prelogin(connection: ServerConnection, expected: str) -> dict[str, Any]:
    frame = await connection.recv()
    if not isinstance(frame, str):
        raise PreloginViolation("binary frame before login", CloseCode.UNSUPPORTED_DATA)
    message = m.decode(frame, m.CLIENT_PRELOGIN_SCHEMAS)
    if message["type"] != expected:
        raise PreloginViolation(f"expected {expected}, got {message['type']}")
    return message


def _peek_request_id(frame: str | bytes) -> int | None:
    """The id of a refused message, so its sender gets the error at once, not a timeout."""
    try:
        if isinstance(frame, bytes):
            header, _ = decode_frame(frame)
            return _request_id(header)
        return _request_id(m.parse_json(frame)) if len(frame) <= MAX_TEXT_MESSAGE else None
    except ProtocolError:
        return None


def _request_id(value: Mapping[str, Any]) -> int | None:
    request_id = value.get("id")
    if isinstance(request_id, int) and not isinstance(request_id, bool) and request_id >= 0:
        return request_id
    return None


def _reject(connection: ServerConnection, status: HTTPStatus, text: str) -> Response:
    response = connection.respond(status, text + "\n")
    # websockets adds no Server header when server_header is None; make sure of it.
    _drop_header(response.headers, "Server")
    return response


def _drop_header(headers: Headers, name: str) -> None:
    with contextlib.suppress(KeyError):
        del headers[name]


def _source(connection: ServerConnection) -> str:
    if isinstance(connection, GatedConnection):
        return connection.source
    peer = connection.remote_address
    return str(peer[0]) if peer else "?"


def _printable(value: str | None, limit: int = 64) -> str:
    """A client id from the network, safe to put in a log line."""
    if value is None:
        return "(none)"
    clean = "".join(ch if ch.isprintable() else "?" for ch in value[:limit])
    return repr(clean)
