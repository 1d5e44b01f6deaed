"""Admission: from TCP accept to a WebSocket ready for the login, within the pre-login budget.

Order of defences, cheapest first:
1. TCP accept: sources told about their block are dropped before any TLS work; per-source and
   total caps on unauthenticated sockets; each handshake spends the source's work budget. A
   deadline starts here: a socket not logged in ``login_timeout`` later is aborted and counts as
   a failed login, whatever stage it stalls in.
2. TLS 1.3, done here (not by asyncio's server) so the deadline covers it.
3. Every byte, frame and ping before login spends the same per-source budget; going over aborts
   the socket and counts as a failed login, so a flood ends in a block.
4. The HTTP upgrade (see upgrade.py): every malformed request gets a 4xx with a one-line body.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, defaultdict
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import InvalidMessage
from websockets.frames import Frame
from websockets.protocol import State
from websockets.server import ServerProtocol

from pi_agent.blocklist import BlockList
from pi_agent.config import Limits

from .framing import SizedServerProtocol
from .logs import ThrottledLog, TokenBucket

_LOGGER = logging.getLogger(__name__)

HANDSHAKE_COST = 4.0  # work units: a TLS handshake (key exchange and a signature)
FRAME_COST = 1.0  # any frame, pings included
KIB_COST = 1.0  # per KiB received after TLS
MAX_BUDGETS = 4096  # sources whose budget is remembered; the fullest go first
MAX_HEAD = 64 * 1024  # beyond this websockets' own header limits answer


def _plain(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\n%s"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (status, extra, len(body), body)
    )


_BAD_REQUEST = _plain(b"400 Bad Request", b"Not a WebSocket upgrade request.\n")
_PIPELINED = _plain(b"400 Bad Request", b"Send nothing before the upgrade is answered.\n")
_NOT_HTTP11 = _plain(b"400 Bad Request", b"Only HTTP/1.1 upgrades.\n")
_NOT_GET = _plain(b"405 Method Not Allowed", b"Only GET upgrades.\n", b"Allow: GET\r\n")


class Admission:
    """Counts unauthenticated sockets and the work each source spends before it logs in."""

    def __init__(self, limits: Limits, blocklist: BlockList, log: ThrottledLog) -> None:
        self.limits = limits
        self.blocklist = blocklist
        self.log = log
        self.unauthenticated = 0
        self.refused = 0
        self.failures = 0
        self._per_source: defaultdict[str, int] = defaultdict(int)
        self._reserved: set[str] = set()
        self._budgets: OrderedDict[str, TokenBucket] = OrderedDict()

    def admit(self, source: str) -> tuple[bool, str]:
        if self.blocklist.already_notified(source):
            return False, "blocked source (already told)"
        if self._per_source[source] >= self.limits.max_unauthenticated_per_source:
            return False, "too many unauthenticated connections from this source"
        if not self.spend(source, HANDSHAKE_COST):
            if self.blocklist.retry_after(source) is None:
                return False, "over its pre-login work budget"
            # Blocked and not told yet: one handshake to hear its 429, then dropped at accept.
            self.blocklist.mark_notified(source)
        if self.unauthenticated >= self.limits.max_unauthenticated:
            # A source that logged in before keeps one slot during a flood.
            if self.blocklist.is_known(source) and source not in self._reserved:
                self._reserved.add(source)
                self._take(source)
                return True, "reserved"
            return False, "too many unauthenticated connections"
        self._take(source)
        return True, ""

    def release(self, source: str, reserved: bool) -> None:
        self.unauthenticated -= 1
        self._per_source[source] -= 1
        if self._per_source[source] <= 0:
            del self._per_source[source]
        if reserved:
            self._reserved.discard(source)

    def spend(self, source: str, units: float) -> bool:
        bucket = self._budgets.get(source)
        if bucket is None:
            bucket = TokenBucket(
                self.limits.prelogin_work_burst, self.limits.prelogin_work_per_second
            )
            self._budgets[source] = bucket
            if len(self._budgets) > MAX_BUDGETS:
                self._budgets.popitem(last=False)
        else:
            self._budgets.move_to_end(source)
        return bucket.take(units)

    def failed(self, source: str, why: str, client_id: str | None = None) -> float | None:
        """Count a failed login (or what costs as much) against the source; log within budget."""
        self.failures += 1
        block = self.blocklist.record_failure(source)
        self.log.log(
            logging.WARNING,
            "login failed: client %s from %s: %s (failures %d%s)",
            printable(client_id),
            source,
            why,
            self.blocklist.failures(source),
            f", blocked for {block:.0f} s" if block else "",
            source=source,
        )
        return block

    def _take(self, source: str) -> None:
        self._per_source[source] += 1
        self.unauthenticated += 1


class TlsGate(Protocol):
    """What a connection needs of the server at accept: the current TLS context and binding."""

    admission: Admission
    ssl_context: Any
    channel_binding: bytes


class GatedConnection(ServerConnection):
    """A websockets connection whose life starts at TCP accept, before TLS.

    websockets is given a plain TCP server; this class applies the admission limits, runs the TLS
    handshake itself and arms the login deadline, then hands the TLS transport to websockets.
    """

    def __init__(self, gate: TlsGate, protocol: ServerProtocol, *args: Any, **kwargs: Any) -> None:
        self.sized = SizedServerProtocol.adopt(protocol)
        super().__init__(protocol, *args, **kwargs)
        self.gate = gate
        self.admission = gate.admission
        self.source = "?"
        self.channel_binding = b""
        self.logged_in = False
        self.upgrade_refused = False  # set by the upgrade check, which counted it already
        self._admitted = False
        self._reserved = False
        self._over_budget = False
        self._answered_garbage = False
        self._deadline: asyncio.TimerHandle | None = None
        self._raw: asyncio.Transport | None = None
        self._tls_task: asyncio.Task[None] | None = None
        self._early: list[bytes] = []
        self._head: bytearray | None = bytearray()  # the upgrade request, until it is complete

    # ---- accept, TLS, deadline -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        self.source = str(peer[0]) if peer else "?"
        admitted, why = self.admission.admit(self.source)
        if not admitted:
            self.admission.refused += 1
            self.admission.log.log(
                logging.INFO, "refused %s at accept: %s", self.source, why, source=self.source
            )
            if why == "over its pre-login work budget":
                self.admission.failed(self.source, "connecting too often")
            transport.abort()
            return
        self._admitted = True
        self._reserved = why == "reserved"
        self._raw = transport
        # Nothing may reach websockets before TLS is up.
        transport.pause_reading()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.admission.limits.login_timeout, self._deadline_passed)
        self._tls_task = loop.create_task(self._start_tls(transport))

    async def _start_tls(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        # The certificate this handshake serves; a renewal meanwhile would make the binding stale.
        self.channel_binding = self.gate.channel_binding
        try:
            tls = await loop.start_tls(
                transport,
                self,
                self.gate.ssl_context,
                server_side=True,
                ssl_handshake_timeout=self.admission.limits.login_timeout,
            )
        except (OSError, ConnectionError, TimeoutError, asyncio.CancelledError) as err:
            _LOGGER.debug("TLS handshake with %s failed: %s", self.source, err)
            transport.abort()
            self._release()
            return
        if tls is None or self.channel_binding != self.gate.channel_binding:
            # Closed meanwhile, or the leaf was renewed mid-handshake (the client retries).
            transport.abort()
            self._release()
            return
        super().connection_made(tls)
        # What TLS decrypted before start_tls() returned here (a client writes its request
        # right after the handshake) waited for the transport.
        early, self._early = self._early, []
        for data in early:
            self.data_received(data)

    def _deadline_passed(self) -> None:
        self._deadline = None
        if not self._admitted:
            return
        # A socket held open until the deadline costs a slot for seconds: a failed login.
        self.admission.failed(
            self.source, f"no login within {self.admission.limits.login_timeout:.1f} s"
        )
        self.abort()

    def abort(self) -> None:
        if self._tls_task is not None and not self._tls_task.done():
            self._tls_task.cancel()
        transport = getattr(self, "transport", None) or self._raw
        if transport is not None:
            transport.abort()
        if self._raw is not None:
            self._raw.abort()
        self._release()

    def authenticated(self) -> None:
        self.logged_in = True
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._release()

    def _release(self) -> None:
        if self._admitted:
            self._admitted = False
            self.admission.release(self.source, self._reserved)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._release()
        if hasattr(self, "transport"):
            super().connection_lost(exc)

    # ---- the pre-login work budget -------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not hasattr(self, "transport"):
            self._early.append(data)
            return
        if not self.logged_in and not self._spend(len(data) / 1024 * KIB_COST, "bytes"):
            return
        if self._head is not None and not self._check_head(data):
            return
        super().data_received(data)

    def _check_head(self, data: bytes) -> bool:
        """Refuse bytes after the upgrade request, before the answer (pipelining).

        websockets would parse them as frames before answering, and fail in its own assertions.
        """
        assert self._head is not None
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HEAD:
                self._head = None  # websockets answers 431 for this itself
            return True
        line = bytes(self._head[: self._head.find(b"\r\n")])
        parts = line.split(b" ")
        method = parts[0][:16]
        pipelined = len(self._head) > end + 4
        self._head = None
        if method.isalpha() and method != b"GET":
            # Answered here, not by websockets: versions before 17 meet a POST with silence.
            return self._refuse(_NOT_GET, f"method {method[:10].decode('ascii', 'replace')}")
        if method == b"GET" and (len(parts) != 3 or parts[2] != b"HTTP/1.1"):
            # Here too: websockets would answer HTTP/1.0 with a 505 of its own words.
            version = parts[-1][:16].decode("ascii", "replace") if len(parts) == 3 else "none"
            return self._refuse(_NOT_HTTP11, f"request line not HTTP/1.1 ({version!r})")
        if pipelined:
            return self._refuse(_PIPELINED, "data sent before the answer")
        return True

    def _refuse(self, answer: bytes, why: str) -> bool:
        self.upgrade_refused = True
        self.transport.write(answer)
        self.transport.close()
        self.admission.refused += 1
        self.admission.failed(self.source, f"refused upgrade: {why}")
        return False

    def process_event(self, event: Any) -> None:
        # Frames arrive here after websockets has parsed them; pings were answered already, but
        # each one spends the budget, so a ping flood ends within its burst.
        if (
            not self.logged_in
            and isinstance(event, Frame)
            and not self._spend(FRAME_COST, "frames")
        ):
            return
        super().process_event(event)

    def _spend(self, units: float, what: str) -> bool:
        if self._over_budget:
            return False
        if self.admission.spend(self.source, units):
            return True
        self._over_budget = True
        self.admission.failed(self.source, f"over its pre-login budget ({what})")
        self.abort()
        return False

    def send_data(self) -> None:
        # websockets answers a request it cannot parse (POST, HTTP/1.0, garbage) with silence;
        # a peer gets a status line instead, before the connection closes.
        exc = self.protocol.handshake_exc
        if (
            exc is not None
            and not self._answered_garbage
            and self.protocol.state is State.CONNECTING
            and self.request is None
        ):
            # Refused while parsing (websockets answered 414 or 431 itself, or nothing).
            self._answered_garbage = True
            if isinstance(exc, InvalidMessage):
                self.transport.write(_BAD_REQUEST)
            self.admission.refused += 1
            # Garbage before login is probing, not a client: it counts like a failed login.
            why = exc.__cause__ if isinstance(exc, InvalidMessage) else exc
            self.admission.failed(self.source, f"not an HTTP upgrade ({str(why)[:80]})")
        super().send_data()


def printable(value: str | None, limit: int = 64) -> str:
    """A client id from the network, safe to put in a log line."""
    if value is None:
        return "(none)"
    clean = "".join(ch if ch.isprintable() else "?" for ch in value[:limit])
    return repr(clean)
