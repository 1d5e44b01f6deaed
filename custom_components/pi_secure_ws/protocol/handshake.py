"""Opening a connection to the agent and logging in.

The agent's certificate authority is checked against the pinned fingerprint before any login
message is sent; the login is SCRAM-SHA-256-PLUS bound to the agent's certificate, and the agent
must prove it knows the client's verifier. Every failure is a typed error.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from . import messages as m
from .const import MECHANISM, PATH, SUBPROTOCOL
from .devices import DeviceDecoder
from .errors import (
    Blocked,
    CannotConnect,
    CertificateMismatch,
    InvalidAuth,
    ProtocolError,
    ServerAuthFailed,
    closed_error,
    describe_os_error,
)
from .models import Hello, parse_hello
from .pinning import fingerprint_of_pem, tls_server_end_point, verify_ca, verify_leaf
from .scram import ClientExchange, ClientKeys, ScramFailed
from .tls import PinnedContext, pinned_context

# websockets logs every frame at DEBUG, SCRAM proofs and nonces included: its logger for this
# client stays at WARNING whatever level the rest of the process logs at.
WIRE_LOGGER = logging.getLogger(f"{__name__}.websockets")
WIRE_LOGGER.setLevel(logging.WARNING)

MAX_MESSAGE_SIZE = 32 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """Where to connect and who to log in as, at the time of one connect."""

    host: str
    port: int
    client_id: str
    secret: str = field(repr=False)
    # None means trust on first use: the login records what the agent presented.
    fingerprint: str | None
    ca_pem: str | None


@dataclass(frozen=True)
class LoggedIn:
    """A connection that passed the login, and the pin it passed (recorded on first use)."""

    ws: ClientConnection
    hello: Hello
    fingerprint: str
    ca_pem: str


class Handshake:
    """Opens connections to one agent and logs in; reuses what a login established.

    Kept between connects: the TLS context of the pin (with its resumable session), the SCRAM
    keys the agent last accepted, and the leaf certificate last verified against the pin.
    """

    def __init__(self, decoder: DeviceDecoder) -> None:
        # Decodes the hello's devices, and goes on decoding their pushes in the session.
        self.decoder = decoder
        self._context: tuple[tuple[str | None, str | None], PinnedContext] | None = None
        self._keys: tuple[str, str, ClientKeys | None] | None = None
        self._verified_leaf: tuple[str, str, bytes, bytes] | None = None

    def ssl_context(self, target: Target) -> PinnedContext:
        # Reused across reconnects while the pin is unchanged: building one costs a millisecond.
        key = (target.fingerprint, target.ca_pem)
        if self._context is None or self._context[0] != key:
            self._context = (key, pinned_context(target.fingerprint, target.ca_pem))
        return self._context[1]

    async def open(self, target: Target) -> ClientConnection:
        host, port = target.host, target.port
        url = f"wss://{_host_for_url(host)}:{port}{PATH}"
        try:
            return await connect(
                url,
                ssl=self.ssl_context(target),
                server_hostname=host,
                subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                compression=None,
                max_size=MAX_MESSAGE_SIZE,
                open_timeout=None,
                user_agent_header=None,
                # A silently dead link is noticed within ~10 s, so entities go unavailable soon.
                ping_interval=5,
                ping_timeout=5,
                proxy=None,
                logger=WIRE_LOGGER,
            )
        except ssl.SSLCertVerificationError:
            raise CertificateMismatch(target.fingerprint or "", None) from None
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
                f"{host}:{port} closed the connection before TLS "
                f"({describe_os_error(err)}): the agent does that to an address it blocked after "
                "failed logins, and says for how long when you try again in a few seconds"
            ) from None
        except ssl.SSLError as err:
            raise CannotConnect(f"TLS failed: {err.reason or describe_os_error(err)}") from None
        except OSError as err:
            raise CannotConnect(f"cannot reach {host}:{port}: {describe_os_error(err)}") from None
        except (ValueError, UnicodeError) as err:
            # A malformed host or port ("[::1", "x..y", a 300-character label).
            raise CannotConnect(f"invalid address {host!r}:{port}: {err}") from None

    async def login(self, ws: ClientConnection, target: Target) -> LoggedIn:
        if ws.subprotocol != SUBPROTOCOL:
            raise ProtocolError("the agent did not accept the pi_secure_ws subprotocol")
        ssl_object = ws.transport.get_extra_info("ssl_object")
        leaf_der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        if not leaf_der:
            raise CannotConnect("the agent presented no certificate")
        exchange: ClientExchange | None = None
        pinned_ca = target.ca_pem
        if ssl_object.context.verify_mode == ssl.CERT_REQUIRED and pinned_ca and target.fingerprint:
            # TLS itself verified the agent against the pinned CA, so the login starts at once,
            # while the agent's auth_start is on its way: one wait less per connect.
            cbind_data = self._check_certificates(pinned_ca, leaf_der, target.fingerprint, True)
            exchange = await self._send_client_first(ws, target, cbind_data)
        start = await _recv_prelogin(ws, m.AUTH_START)
        if MECHANISM not in start["mechanisms"]:
            raise ProtocolError(f"the agent does not offer {MECHANISM}")
        # Trust on first use when no fingerprint is pinned yet: the caller shows it for checking.
        fingerprint = target.fingerprint or fingerprint_of_pem(start["ca"])
        if exchange is None:
            cbind_data = self._check_certificates(start["ca"], leaf_der, fingerprint, False)
            exchange = await self._send_client_first(ws, target, cbind_data)
        elif start["ca"] != pinned_ca:
            verify_ca(start["ca"], fingerprint)  # the pinned CA, written another way, or refused
        server_first = await _recv_prelogin(ws, m.AUTH_SERVER_FIRST)
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
        server_final = await _recv_prelogin(ws, m.AUTH_SERVER_FINAL)
        try:
            exchange.verify_server_final(server_final["message"])
        except ScramFailed:
            raise ServerAuthFailed(
                "the agent could not prove it knows this client: it is not the paired agent"
            ) from None
        # Only keys the agent has just accepted are kept for the next login, and only a TLS
        # session that was verified against the pin is resumed.
        self._keys = (target.client_id, target.secret, exchange.keys)
        context = ssl_object.context
        if isinstance(context, PinnedContext) and context.verify_mode == ssl.CERT_REQUIRED:
            # Python copies a session through DER (~0.2 ms): done after the login, not in it.
            asyncio.get_running_loop().call_soon(context.keep_session_of, ssl_object)
        raw = await _recv(ws)
        data = m.validate(raw, m.AGENT_SCHEMAS)
        if data["type"] != m.HELLO:
            raise ProtocolError(f"expected hello, got {data['type']}")
        return LoggedIn(ws, parse_hello(data, self.decoder), fingerprint, start["ca"])

    async def _send_client_first(
        self, ws: ClientConnection, target: Target, cbind_data: bytes
    ) -> ClientExchange:
        try:
            exchange = ClientExchange(
                target.client_id, target.secret, cbind_data, keys=self._cached_keys(target)
            )
        except ScramFailed as err:
            raise InvalidAuth(f"cannot log in: {err}") from None
        await ws.send(
            m.encode(m.AUTH_CLIENT_FIRST, mechanism=MECHANISM, message=exchange.client_first())
        )
        return exchange

    def _cached_keys(self, target: Target) -> ClientKeys | None:
        if self._keys is None:
            return None
        client_id, secret, keys = self._keys
        return keys if client_id == target.client_id and secret == target.secret else None

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


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    try:
        frame = await ws.recv()
    except ConnectionClosed as err:
        raise closed_error(err) from None
    if not isinstance(frame, str):
        raise ProtocolError("binary frame during login")
    return m.parse_json(frame)


async def _recv_prelogin(ws: ClientConnection, expected: str) -> dict[str, Any]:
    data = m.validate(await _recv(ws), m.AGENT_PRELOGIN_SCHEMAS)
    if data["type"] == m.AUTH_FAILED:
        if data["reason"] == m.REASON_BLOCKED:
            raise Blocked(data.get("retry_after") or 1.0)
        if data["reason"] == m.REASON_INVALID_AUTH:
            raise InvalidAuth("the agent refused the login: wrong secret or unknown client id")
        raise ProtocolError(f"login failed: {data['reason']}")
    if data["type"] != expected:
        raise ProtocolError(f"expected {expected}, got {data['type']}")
    return data


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value or 1))
    except ValueError:
        return 1.0


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
