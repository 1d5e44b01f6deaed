"""AgentClient: the HA-free asyncio client of a pi_secure_ws agent.

It connects over TLS 1.3, checks the agent's certificate authority against the pinned fingerprint
before it sends any login message, logs in with SCRAM-SHA-256-PLUS bound to the agent's
certificate, checks the agent's own proof, then sends commands and receives pushed state. ``run()``
keeps the session up: reconnects with exponential back-off and jitter and resynchronises state, but
never retries a refused login on its own (it would only trip the agent's block list).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from . import messages as m
from .binary import decode_frame, encode_frame
from .const import MECHANISM, PATH, SUBPROTOCOL, CloseCode
from .devices import DeviceDecoder, DeviceInfo, DeviceState
from .errors import (
    Blocked,
    CannotConnect,
    CertificateMismatch,
    CommandError,
    InvalidAuth,
    PiSecureWsError,
    ProtocolError,
    RequestTimeout,
    ServerAuthFailed,
)
from .pinning import fingerprint_of_pem, tls_server_end_point, verify_ca, verify_leaf
from .scram import ClientExchange, ClientKeys, ScramFailed

_LOGGER = logging.getLogger(__name__)
# websockets logs every frame at DEBUG, SCRAM proofs and nonces included: its logger for this
# client stays at WARNING whatever level the rest of the process logs at.
_WIRE_LOGGER = logging.getLogger(f"{__name__}.websockets")
_WIRE_LOGGER.setLevel(logging.WARNING)

MAX_MESSAGE_SIZE = 32 * 1024 * 1024
# After a 1001 "going away" (the agent restarting) retry quickly for a while before backing off.
RESTART_RETRY = 0.25
RESTART_WINDOW = 15.0
STREAM_QUEUE = 2  # frames buffered per stream; older ones are dropped (the newest wins)


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


class ClientStream:
    """Frames of one stream; iterate with ``async for`` and ``await close()`` when done."""

    def __init__(self, client: AgentClient, stream_id: int, header: dict[str, Any]) -> None:
        self._client = client
        self.stream_id = stream_id
        self.header = header
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=STREAM_QUEUE)
        self.closed = False
        self.dropped = 0

    def _push(self, data: bytes | None) -> None:
        if self._queue.full():
            # A slow consumer gets the newest frame, not a growing backlog.
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(data)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self.closed and self._queue.empty():
            raise StopAsyncIteration
        data = await self._queue.get()
        if data is None:
            self.closed = True
            raise StopAsyncIteration
        return data

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._client._streams.pop(self.stream_id, None)
        with contextlib.suppress(PiSecureWsError):
            await self._client._request(m.STREAM_STOP, stream=self.stream_id)
        self._push(None)


class _PinnedContext(ssl.SSLContext):
    """A client context that resumes its last TLS session with the agent (RFC 8446 2.2).

    A resumed handshake skips the certificate exchange and its signature, about a tenth of a
    reconnect. asyncio cannot pass a session to a connection, so the context hands it to every
    TLS object it makes. It is only given sessions of handshakes verified against the pinned CA,
    and it belongs to one pin: a new pin makes a new context, without a session. The agent
    changes its ticket key whenever it changes its certificate, so a resumed session never
    carries a stale channel binding.
    """

    tls_session: ssl.SSLSession | None = None

    def keep_session_of(self, ssl_object: ssl.SSLObject) -> None:
        try:
            self.tls_session = ssl_object.session
        except (ssl.SSLError, ValueError):  # no session to keep: the next connect does a full one
            self.tls_session = None

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(
            incoming, outgoing, server_side, server_hostname, session or self.tls_session
        )


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
        self._ws: ClientConnection | None = None
        self._context: tuple[tuple[str | None, str | None], _PinnedContext] | None = None
        # What the last successful login established, reused by the next one (see _login).
        self._keys: tuple[str, str, ClientKeys | None] | None = None
        self._verified_leaf: tuple[str, str, bytes, bytes] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._streams: dict[int, ClientStream] = {}
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
        return self._ws is not None and self._reader is not None and not self._reader.done()

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
        try:
            async with asyncio.timeout(self.connect_timeout):
                ws = await self._open()
                try:
                    hello = await self._login(ws)
                except BaseException:
                    await _abort(ws)
                    raise
        except TimeoutError:
            raise CannotConnect(f"timed out connecting to {self.host}:{self.port}") from None
        self._ws = ws
        self.hello = hello
        self.states = dict(hello.states)
        self._disconnected.clear()
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(ws))
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
        result = await self.call(device, action, params)
        if not isinstance(result, dict) or not isinstance(result.get("stream"), int):
            raise ProtocolError(f"{device}.{action} did not start a stream")
        stream = ClientStream(self, result["stream"], result)
        self._streams[stream.stream_id] = stream
        return stream

    async def run(self) -> None:
        """Stay connected until close(). Returns on close; raises InvalidAuth, Blocked never
        (it waits), CertificateMismatch and ServerAuthFailed (a user must act on those)."""
        loop = asyncio.get_running_loop()
        delay = self.min_backoff
        fast_until = 0.0
        while not self._closing:
            if not self.connected:
                try:
                    await self.connect()
                    delay = self.min_backoff
                except (InvalidAuth, CertificateMismatch, ServerAuthFailed) as err:
                    self._emit(Disconnected(err))
                    raise
                except Blocked as err:
                    await self._sleep(err.retry_after + random.uniform(0, 1))  # noqa: S311
                    continue
                except PiSecureWsError as err:
                    _LOGGER.debug("connect to %s:%s failed: %s", self.host, self.port, err)
                    if loop.time() < fast_until:
                        # The agent said it is restarting: it is back within seconds.
                        await self._sleep(RESTART_RETRY * random.uniform(0.8, 1.2))  # noqa: S311
                    else:
                        await self._sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311
                        delay = min(delay * 2, self.max_backoff)
                    continue
            await self._disconnected.wait()
            if not self._closing and isinstance(self._last_error, InvalidAuth):
                # Revoked or rotated on the agent: another login would only fail (and count).
                raise self._last_error
            if self._last_close_code == CloseCode.GOING_AWAY:
                fast_until = loop.time() + RESTART_WINDOW

    async def close(self) -> None:
        self._closing = True
        self._closed.set()
        self._disconnected.set()
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await ws.close(CloseCode.NORMAL)
            await _abort(ws)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self._fail_pending(CannotConnect("client closed"))

    # ---- connection and login ------------------------------------------------------------

    def _ssl_context(self) -> _PinnedContext:
        # Reused across reconnects while the pin is unchanged: building one costs a millisecond.
        key = (self.fingerprint, self.ca_pem)
        if self._context is None or self._context[0] != key:
            self._context = (key, self._new_ssl_context())
        return self._context[1]

    def _new_ssl_context(self) -> _PinnedContext:
        context = _PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        # Trust is the pinned private CA, not a name: agents move between DHCP addresses.
        context.check_hostname = False
        if self.ca_pem is not None and self.fingerprint is not None:
            verify_ca(self.ca_pem, self.fingerprint)
            context.load_verify_locations(cadata=self.ca_pem)
            context.verify_mode = ssl.CERT_REQUIRED
        else:
            # First contact: the CA arrives in auth_start and is checked against the pin
            # before any login message is sent.
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _open(self) -> ClientConnection:
        url = f"wss://{_host_for_url(self.host)}:{self.port}{PATH}"
        try:
            return await connect(
                url,
                ssl=self._ssl_context(),
                server_hostname=self.host,
                subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                compression=None,
                max_size=MAX_MESSAGE_SIZE,
                open_timeout=None,
                user_agent_header=None,
                # A silently dead link is noticed within ~10 s, so entities go unavailable soon.
                ping_interval=5,
                ping_timeout=5,
                proxy=None,
                logger=_WIRE_LOGGER,
            )
        except ssl.SSLCertVerificationError:
            raise CertificateMismatch(self.fingerprint or "", None) from None
        except InvalidStatus as err:
            status = err.response.status_code
            if status == 429:
                raise Blocked(_retry_after(err.response.headers.get("Retry-After"))) from None
            raise CannotConnect(f"the agent refused the connection (HTTP {status})") from None
        except InvalidHandshake as err:
            raise CannotConnect(f"not a pi_secure_ws agent: {err}") from None
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError) as err:
            # Accepted, then closed before TLS finished: what the agent does to an address it
            # has told about its block; the hint saves the user from thinking the Pi is down.
            raise CannotConnect(
                f"{self.host}:{self.port} closed the connection before TLS "
                f"({describe_os_error(err)}): the agent does that to an address it blocked after "
                "failed logins, and says for how long when you try again in a few seconds"
            ) from None
        except ssl.SSLError as err:
            raise CannotConnect(f"TLS failed: {err.reason or describe_os_error(err)}") from None
        except OSError as err:
            raise CannotConnect(
                f"cannot reach {self.host}:{self.port}: {describe_os_error(err)}"
            ) from None
        except (ValueError, UnicodeError) as err:
            # A malformed host or port ("[::1", "x..y", a 300-character label).
            raise CannotConnect(f"invalid address {self.host!r}:{self.port}: {err}") from None

    async def _login(self, ws: ClientConnection) -> Hello:
        if ws.subprotocol != SUBPROTOCOL:
            raise ProtocolError("the agent did not accept the pi_secure_ws subprotocol")
        ssl_object = ws.transport.get_extra_info("ssl_object")
        leaf_der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        if not leaf_der:
            raise CannotConnect("the agent presented no certificate")
        exchange: ClientExchange | None = None
        if ssl_object.context.verify_mode == ssl.CERT_REQUIRED and self.ca_pem and self.fingerprint:
            # TLS itself verified the agent against the pinned CA, so the login starts at once,
            # while the agent's auth_start is on its way: one wait less per connect.
            cbind_data = self._check_certificates(self.ca_pem, leaf_der, self.fingerprint, True)
            exchange = await self._send_client_first(ws, cbind_data)
        start = await self._recv_prelogin(ws, m.AUTH_START)
        if MECHANISM not in start["mechanisms"]:
            raise ProtocolError(f"the agent does not offer {MECHANISM}")
        # Trust on first use when no fingerprint is pinned yet: the caller shows it for checking.
        fingerprint = self.fingerprint or fingerprint_of_pem(start["ca"])
        if exchange is None:
            cbind_data = self._check_certificates(start["ca"], leaf_der, fingerprint, False)
            exchange = await self._send_client_first(ws, cbind_data)
        elif start["ca"] != self.ca_pem:
            verify_ca(start["ca"], fingerprint)  # the pinned CA, written another way, or refused
        server_first = await self._recv_prelogin(ws, m.AUTH_SERVER_FIRST)
        try:
            needed = exchange.keys_needed(server_first["message"])
            if needed is not None:
                # PBKDF2 with the agent's iteration count: milliseconds, but never on the loop
                # (inside Home Assistant, the loop that runs everything else).
                await asyncio.get_running_loop().run_in_executor(
                    None, exchange.derive_keys, *needed
                )
            client_final = exchange.client_final(server_first["message"])
        except ScramFailed as err:
            raise ProtocolError(f"bad SCRAM server-first message: {err}") from None
        await ws.send(m.encode(m.AUTH_CLIENT_FINAL, message=client_final))
        server_final = await self._recv_prelogin(ws, m.AUTH_SERVER_FINAL)
        try:
            exchange.verify_server_final(server_final["message"])
        except ScramFailed:
            raise ServerAuthFailed(
                "the agent could not prove it knows this client: it is not the paired agent"
            ) from None
        # Only keys the agent has just accepted are kept for the next login, and only a TLS
        # session that was verified against the pin is resumed.
        self._keys = (self.client_id, self._secret, exchange.keys)
        context = ssl_object.context
        if isinstance(context, _PinnedContext) and context.verify_mode == ssl.CERT_REQUIRED:
            # Python copies a session through DER (~0.2 ms): done after the login, not in it.
            asyncio.get_running_loop().call_soon(context.keep_session_of, ssl_object)
        raw = await self._recv(ws)
        data = m.validate(raw, m.AGENT_SCHEMAS)
        if data["type"] != m.HELLO:
            raise ProtocolError(f"expected hello, got {data['type']}")
        self.fingerprint = fingerprint
        self.ca_pem = start["ca"]
        return _parse_hello(data, self._decoder)

    async def _send_client_first(self, ws: ClientConnection, cbind_data: bytes) -> ClientExchange:
        try:
            exchange = ClientExchange(
                self.client_id, self._secret, cbind_data, keys=self._cached_keys()
            )
        except ScramFailed as err:
            raise InvalidAuth(f"cannot log in: {err}") from None
        await ws.send(
            m.encode(m.AUTH_CLIENT_FIRST, mechanism=MECHANISM, message=exchange.client_first())
        )
        return exchange

    def _cached_keys(self) -> ClientKeys | None:
        if self._keys is None:
            return None
        client_id, secret, keys = self._keys
        return keys if client_id == self.client_id and secret == self._secret else None

    def _check_certificates(
        self, ca_pem: str, leaf_der: bytes, fingerprint: str, verified_by_tls: bool
    ) -> bytes:
        """Check the agent's CA against the pin and its leaf against the CA; return the channel
        binding data of the leaf.

        A leaf checked before is not parsed again when this handshake verified it against the
        pinned CA (OpenSSL checked the chain and the validity period): it saves a signature
        check on every reconnect.
        """
        seen = self._verified_leaf
        if verified_by_tls and seen is not None and seen[:3] == (fingerprint, ca_pem, leaf_der):
            return seen[3]
        ca = verify_ca(ca_pem, fingerprint)
        verify_leaf(leaf_der, ca, fingerprint)
        cbind_data = tls_server_end_point(leaf_der)
        self._verified_leaf = (fingerprint, ca_pem, leaf_der, cbind_data)
        return cbind_data

    async def _recv(self, ws: ClientConnection) -> dict[str, Any]:
        try:
            frame = await ws.recv()
        except ConnectionClosed as err:
            raise _closed_error(err) from None
        if not isinstance(frame, str):
            raise ProtocolError("binary frame during login")
        return m.parse_json(frame)

    async def _recv_prelogin(self, ws: ClientConnection, expected: str) -> dict[str, Any]:
        raw = await self._recv(ws)
        data = m.validate(raw, m.AGENT_PRELOGIN_SCHEMAS)
        if data["type"] == m.AUTH_FAILED:
            if data["reason"] == m.REASON_BLOCKED:
                raise Blocked(data.get("retry_after") or 1.0)
            if data["reason"] == m.REASON_INVALID_AUTH:
                raise InvalidAuth("the agent refused the login: wrong secret or unknown client id")
            raise ProtocolError(f"login failed: {data['reason']}")
        if data["type"] != expected:
            raise ProtocolError(f"expected {expected}, got {data['type']}")
        return data

    # ---- session -------------------------------------------------------------------------

    async def _request(
        self,
        type_: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-request deadline is the API
        data: bytes | None = None,
        **fields: Any,
    ) -> Any:
        ws = self._ws
        if ws is None or not self.connected:
            raise CannotConnect("not connected to the agent")
        request_id = next(self._ids)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending[request_id] = future
        self.stats["requests"] += 1
        try:
            if data is None:
                await ws.send(m.encode(type_, id=request_id, **fields))
            else:
                header = {"v": 1, "type": type_, "id": request_id, **fields}
                await ws.send(encode_frame(header, data))
            # A timer that fails the future: the deadline of asyncio.timeout for less work on
            # every request.
            timer = loop.call_later(timeout or self.request_timeout, _time_out, future, type_)
            try:
                return await future
            finally:
                timer.cancel()
        except ConnectionClosed as err:
            raise _closed_error(err) from None
        finally:
            self._pending.pop(request_id, None)

    async def _read_loop(self, ws: ClientConnection) -> None:
        error: Exception | None = None
        try:
            async for frame in ws:
                if isinstance(frame, str):
                    self._handle_text(frame)
                else:
                    self._handle_binary(frame)
        except ConnectionClosed as err:
            error = _closed_error(err)
        except PiSecureWsError as err:
            _LOGGER.warning("agent %s:%s broke the protocol: %s", self.host, self.port, err)
            error = err
        finally:
            if self._ws is ws:
                self._ws = None
            await _abort(ws)
            if error is None and ws.close_code is not None:
                error = _closed_error_code(ws.close_code, ws.close_reason)
            self._fail_pending(error or CannotConnect("connection closed"))
            for stream in list(self._streams.values()):
                stream._push(None)
            self._streams.clear()
            self.stats["disconnects"] += 1
            self._last_error = error
            self._last_close_code = ws.close_code
            self._disconnected.set()
            if not self._closing:
                self._emit(Disconnected(error))

    def _handle_text(self, frame: str) -> None:
        try:
            data = m.decode(frame, m.AGENT_SCHEMAS)
        except m.UnknownMessageType as err:
            _LOGGER.debug("ignoring a message from a newer agent: %s", err)
            return
        type_ = data["type"]
        if type_ == m.STATE:
            device_id = data["device"]
            state = self._decoder.state(device_id, data["state"])
            if state is not None:
                self.states[device_id] = state
            elif device_id in self._decoder.unusable:
                self.states.pop(device_id, None)
            else:
                return  # a device the hello did not describe
            self._emit(StateChanged(device_id, state))
        elif type_ == m.STREAM_END:
            stream = self._streams.pop(data["stream"], None)
            if stream is not None:
                stream.closed = True
                stream._push(None)
        elif type_ == m.RESULT:
            self._resolve(data["id"], data.get("data"))
        elif type_ == m.ERROR:
            error = CommandError(data["code"], data["message"])
            if data["id"] is None:
                _LOGGER.warning("agent error: %s", error)
            else:
                self._reject(data["id"], error)

    def _handle_binary(self, frame: bytes) -> None:
        header, payload = decode_frame(frame)
        stream_id = header.get("stream")
        if isinstance(stream_id, int):
            stream = self._streams.get(stream_id)
            if stream is not None:
                stream._push(payload)
            return
        request_id = header.get("id")
        if isinstance(request_id, int):
            self._resolve(request_id, BinaryPayload(header, payload))

    def _resolve(self, request_id: int, value: Any) -> None:
        future = self._pending.get(request_id)
        if future is not None and not future.done():
            future.set_result(value)

    def _reject(self, request_id: int, error: Exception) -> None:
        future = self._pending.get(request_id)
        if future is not None and not future.done():
            future.set_exception(error)

    def _fail_pending(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

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


def _time_out(future: asyncio.Future[Any], type_: str) -> None:
    if not future.done():
        future.set_exception(RequestTimeout(f"no answer to {type_} within the timeout"))


def _parse_hello(data: dict[str, Any], decoder: DeviceDecoder) -> Hello:
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


def _closed_error(err: ConnectionClosed) -> PiSecureWsError:
    frame = err.rcvd
    if frame is None:
        return CannotConnect("connection to the agent lost")
    return _closed_error_code(frame.code, frame.reason)


def _closed_error_code(code: int, reason: str | None) -> PiSecureWsError:
    if code == CloseCode.INVALID_AUTH:
        return InvalidAuth(reason or "the agent refused the login")
    if code == CloseCode.CREDENTIALS_REVOKED:
        return InvalidAuth(reason or "this client's credentials were revoked on the agent")
    if code == CloseCode.BLOCKED:
        return Blocked(1.0)
    if code == CloseCode.PROTOCOL_ERROR:
        return ProtocolError(reason or "the agent reported a protocol error")
    return CannotConnect(
        f"connection closed by the agent ({code}{': ' + reason if reason else ''})"
    )


def describe_os_error(err: BaseException) -> str:
    """The reason an error gives, or what it is when it gives none: never an empty string."""
    text = str(err).strip()
    if text:
        return text
    errno = getattr(err, "errno", None)
    return f"{type(err).__name__} (errno {errno})" if errno else type(err).__name__


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value or 1))
    except ValueError:
        return 1.0


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


async def _abort(ws: ClientConnection) -> None:
    transport = ws.transport
    if transport is not None and not transport.is_closing():
        transport.abort()
