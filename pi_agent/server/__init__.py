"""The agent's WSS server, one module per stage, each owning its budget (docs/security.md).

- admission: TCP accept, TLS, the login deadline and the per-source pre-login work budget;
- upgrade: the HTTP upgrade checks (a 4xx with a one-line body for anything malformed);
- login: the SCRAM exchange, giving a principal or nothing;
- session: the read loop, the message rate, requests in flight, coalesced pushes;
- dispatch: a principal and one request to exactly one answer, without sockets;
- streams: a session's streams, capped;
- logs: the log budget, and websockets' own loggers kept from logging frames.
This module wires them: the listener, the session caps, pushes, revocation and stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.const import MECHANISM, PROTOCOL_VERSION, SUBPROTOCOL, CloseCode, Role
from pi_secure_ws_protocol.pinning import tls_server_end_point
from websockets.asyncio.server import Server, ServerConnection, serve

from pi_agent import __version__
from pi_agent.blocklist import BlockList
from pi_agent.config import Limits
from pi_agent.devices.base import Device
from pi_agent.memory_budget import MemoryBudget

from .admission import Admission, GatedConnection
from .dispatch import Principal
from .login import ClientDirectory, log_in
from .logs import ThrottledLog, TokenBucket, pin_wire_loggers
from .session import Session
from .upgrade import UpgradeCheck, one_line_response

__all__ = ["AgentIdentity", "AgentServer", "ClientDirectory", "Principal", "ThrottledLog"]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    name: str
    model: str | None = None


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
        limits: Limits,
        allowed_origins: tuple[str, ...] = (),
        host: str = "0.0.0.0",  # noqa: S104 - the agent serves the LAN
        port: int = 0,
        memory: MemoryBudget | None = None,
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
        self.sessions: list[Session] = []  # oldest first
        # Shared with the devices' decodes when the app passes its own.
        self.memory = memory or MemoryBudget(limits.memory_budget)
        self.log = ThrottledLog(
            logging.getLogger("pi_agent.server"),
            limits.log_burst,
            limits.log_lines_per_second,
            limits.log_burst_per_source,
        )
        self.admission = Admission(limits, blocklist, self.log)
        self.logins = 0
        self.accepting = True
        self._server: Server | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        # Per client id, so more sessions do not buy more decodes; client ids are the paired ones.
        self._costly: dict[str, TokenBucket] = {}

    def _costly_budget(self, client_id: str) -> TokenBucket:
        bucket = self._costly.get(client_id)
        if bucket is None:
            bucket = self._costly[client_id] = TokenBucket(
                self.limits.costly_calls_burst, self.limits.costly_calls_per_second
            )
        return bucket

    @property
    def unauthenticated(self) -> int:
        return self.admission.unauthenticated

    @property
    def stats(self) -> dict[str, int]:
        return {
            "logins": self.logins,
            "login_failures": self.admission.failures,
            "refused": self.admission.refused,
        }

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        origins: list[Any] = [None, *self.allowed_origins]
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            # websockets makes one at each TCP accept; it carries this server along.
            create_connection=cast(
                "type[ServerConnection]", functools.partial(GatedConnection, self)
            ),
            process_request=UpgradeCheck(self.allowed_origins),
            process_response=one_line_response,
            origins=origins,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            compression=None,  # compression of secrets next to attacker data leaks them
            server_header=None,  # no version banner
            max_size=self.limits.prelogin_max_frame,
            max_queue=4,  # frames read ahead of the session: the rate limit is checked per frame
            open_timeout=None,  # the login deadline from TCP accept covers the upgrade
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
            logger=pin_wire_loggers(),
        )
        sockets = self._server.sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]
        for device in self.devices.values():
            self._unsubscribe.append(device.add_listener(self._device_changed))
        _LOGGER.info("listening on %s:%s (TLS 1.3, %s)", self.host, self.port, MECHANISM)

    def stop_accepting(self) -> None:
        """From now on no command reaches a device: calls are refused, new logins closed.

        The first step of every stop, before the devices go to their safe level; sessions stay
        open (for the state pushes of that) until :meth:`stop`.
        """
        self.accepting = False
        for session in self.sessions:
            session.accepting = False

    async def stop(self) -> None:
        """Close every session with 1001 going away so clients reconnect later."""
        self.stop_accepting()
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
            if not still_valid(session.client_id, session.principal.role):
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

    # ---- one connection ------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        assert isinstance(connection, GatedConnection)
        result = await log_in(connection, self.clients, self.ca_pem)
        if result is None:
            return
        principal, server_final = result
        connection.authenticated()
        if not self._make_room(principal):
            await connection.close(CloseCode.TRY_AGAIN_LATER, "too many sessions")
            return
        self.logins += 1
        # After login: small text for everyone, big binary frames only for roles that upload.
        connection.sized.set_limits(
            text=self.limits.max_text_message,
            binary=(
                self.limits.max_message_size
                if principal.role >= Role.CONTROL
                else self.limits.max_text_message
            ),
        )
        session = Session(
            connection,
            principal,
            self.devices,
            self.limits,
            self.log,
            on_flood=lambda source: self.admission.failed(
                source, "closed for a message flood", principal.client_id
            ),
            costly=self._costly_budget(principal.client_id),
            memory=self.memory,
        )
        session.accepting = self.accepting
        self.sessions.append(session)
        try:
            hello = self.hello(principal.client_id, principal.role)
            await session.run([m.encode(m.AUTH_SERVER_FINAL, message=server_final), hello])
        finally:
            if session in self.sessions:  # not when a newer session replaced it
                self.sessions.remove(session)
            self.log.log(
                logging.INFO,
                "closed session of client %s from %s (code %s)",
                principal.client_id,
                principal.source,
                connection.close_code,
                source=principal.source,
            )

    def _make_room(self, principal: Principal) -> bool:
        """Apply the session caps: the client's oldest session gives way; the total is firm."""
        if not self.accepting:
            return False
        mine = [s for s in self.sessions if s.client_id == principal.client_id]
        if len(mine) >= self.limits.max_sessions_per_client:
            # A reconnecting client whose old session has not timed out yet gets in.
            oldest = mine[0]
            self.sessions.remove(oldest)
            oldest.close_soon(CloseCode.POLICY_VIOLATION, "replaced by a newer session")
        if len(self.sessions) >= self.limits.max_sessions:
            self.log.log(
                logging.WARNING,
                "refused a session of client %s from %s: %d sessions, the most allowed",
                principal.client_id,
                principal.source,
                len(self.sessions),
                source=principal.source,
            )
            return False
        return True

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
                "max_message_size": (
                    self.limits.max_message_size
                    if role >= Role.CONTROL
                    else self.limits.max_text_message
                ),
            },
            devices=[d.describe() for d in self.devices.values()],
            states={d.id: d.state() for d in self.devices.values()},
        )
