"""The login: a SCRAM-SHA-256-PLUS exchange bound to the certificate, giving a principal or nothing.

Text frames of at most ``prelogin_max_frame`` bytes until it ends. Everything that goes wrong
(a wrong proof, an unknown client, garbage, an oversized or binary frame) counts as one failed
login against the source, with the same answer for an unknown client and a wrong proof.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.const import MECHANISM, CloseCode, Role
from pi_secure_ws_protocol.errors import ProtocolError
from pi_secure_ws_protocol.scram import ScramFailed, ServerExchange, Verifier
from websockets.exceptions import ConnectionClosed

from .admission import GatedConnection
from .dispatch import Principal

_LOGGER = logging.getLogger(__name__)


class ClientDirectory:
    """What the login needs of the credential store; the app swaps it on SIGHUP."""

    def __init__(
        self,
        lookup: Callable[[str], tuple[Verifier, bool]],
        role_of: Callable[[str], Role | None],
    ) -> None:
        self.lookup = lookup
        self.role_of = role_of


class PreloginViolation(ProtocolError):
    """Something other than the expected login message arrived before login."""

    def __init__(self, reason: str, code: int = CloseCode.PROTOCOL_ERROR) -> None:
        super().__init__(reason)
        self.code = code


async def log_in(
    connection: GatedConnection, clients: ClientDirectory, ca_pem: str
) -> tuple[Principal, str] | None:
    """Run the login; the principal and the SCRAM server-final (not yet sent) on success."""
    admission = connection.admission
    source = connection.source
    exchange = ServerExchange(connection.channel_binding, clients.lookup)
    try:
        await connection.send(m.encode(m.AUTH_START, mechanisms=[MECHANISM], ca=ca_pem))
        first = await _recv_prelogin(connection, m.AUTH_CLIENT_FIRST)
        if first["mechanism"] != MECHANISM:
            raise ScramFailed(f"unsupported mechanism {first['mechanism'][:40]!r}")
        server_first = exchange.server_first(first["message"])
        await connection.send(m.encode(m.AUTH_SERVER_FIRST, message=server_first))
        final = await _recv_prelogin(connection, m.AUTH_CLIENT_FINAL)
        server_final = exchange.server_final(final["message"])
    except ScramFailed as err:
        await _refuse(connection, exchange.client_id, str(err))
        return None
    except ProtocolError as err:
        # Garbage before login counts as a failed login: it is probing, not a client.
        code = err.code if isinstance(err, PreloginViolation) else CloseCode.PROTOCOL_ERROR
        await _refuse(connection, exchange.client_id, str(err), code, m.REASON_PROTOCOL)
        return None
    except ConnectionClosed as err:
        if err.sent is not None and err.sent.code == CloseCode.MESSAGE_TOO_BIG:
            # An oversized frame before login is probing, like any other garbage.
            admission.failed(source, "an oversized frame before login", exchange.client_id)
        return None
    client_id = exchange.client_id or ""
    role = clients.role_of(client_id) if exchange.known else None
    if role is None:  # removed between lookup and now
        await _refuse(connection, client_id, "unknown client")
        return None
    admission.blocklist.record_success(source)
    _LOGGER.info("login: client %s from %s as %s", client_id, source, role.label)
    return Principal(client_id=client_id, role=role, source=source), server_final


async def _refuse(
    connection: GatedConnection,
    client_id: str | None,
    why: str,
    code: int = CloseCode.INVALID_AUTH,
    reason: str = m.REASON_INVALID_AUTH,
) -> None:
    connection.admission.failed(connection.source, why, client_id)
    # The same answer for an unknown client and a wrong proof: no user enumeration.
    with contextlib.suppress(ConnectionClosed):
        await connection.send(m.encode(m.AUTH_FAILED, reason=reason))
        await connection.close(code, reason.replace("_", " "))


async def _recv_prelogin(connection: GatedConnection, expected: str) -> dict[str, Any]:
    frame = await connection.recv()
    if not isinstance(frame, str):
        raise PreloginViolation("binary frame before login", CloseCode.UNSUPPORTED_DATA)
    message = m.decode(frame, m.CLIENT_PRELOGIN_SCHEMAS)
    if message["type"] != expected:
        raise PreloginViolation(f"expected {expected}, got {message['type']}")
    return message
