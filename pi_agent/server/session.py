"""One logged-in client: the read loop, its rate budget, coalesced pushes and its requests.

Budgets, each enforced before the cost is paid:
- message rate: a token bucket checked before a frame is parsed; a refused message gets a
  ``rate_limited`` error with the id read from its first bytes, and a session that stays over the
  rate for ``flood_close_after`` seconds is closed with 1008;
- requests in flight: at most ``max_in_flight`` calls run at once, the reader waits for a slot;
- streams: at most ``max_streams_per_session`` (see streams.py);
- memory: a message is held against the agent's one memory budget until it is answered (and
  picture decodes hold theirs, frame.py); one that does not fit is answered ``refused``;
- costly calls (thumbnails, snapshots, stream starts, uploads): a token bucket per client id,
  shared by its sessions; one over it is answered ``rate_limited`` before its handler runs.
Pushes are coalesced: a slow client gets the latest state of each device, never a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.const import CloseCode
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from pi_agent.config import Limits
from pi_agent.devices.base import Device, StreamResult
from pi_agent.memory_budget import MemoryBudget

from .dispatch import (
    Failure,
    Principal,
    Request,
    dispatch,
    encode_answer,
    parse_request,
    peek_request_id,
)
from .logs import ThrottledLog, TokenBucket
from .streams import StreamTable

_LOGGER = logging.getLogger(__name__)


class FloodGuard:
    """The message rate of one session, and how long it has been over it."""

    def __init__(self, rate: float, close_after: float, clock: Callable[[], float]) -> None:
        self._bucket = TokenBucket(max(1.0, rate * 2), rate)
        self._close_after = close_after
        self._clock = clock
        self._flood_since: float | None = None
        self._last_refusal = 0.0

    def allow(self) -> bool:
        now = self._clock()
        if self._bucket.take(now=now):
            # A second without refusals ends a flood; single allowed messages in between do not.
            if self._flood_since is not None and now - self._last_refusal > 1.0:
                self._flood_since = None
            return True
        self._last_refusal = now
        if self._flood_since is None:
            self._flood_since = now
        return False

    @property
    def flooding(self) -> bool:
        return (
            self._flood_since is not None
            and self._last_refusal - self._flood_since >= self._close_after
        )


class Session:
    def __init__(
        self,
        connection: ServerConnection,
        principal: Principal,
        devices: Mapping[str, Device],
        limits: Limits,
        log: ThrottledLog,
        *,
        on_flood: Callable[[str], object] = lambda _source: None,
        costly: TokenBucket | None = None,
        memory: MemoryBudget | None = None,
    ) -> None:
        self.connection = connection
        self.on_flood = on_flood
        self.principal = principal
        self.devices = devices
        self.limits = limits
        self.log = log
        self.started = time.monotonic()
        self._dirty: dict[str, None] = {}
        self._dirty_event = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = asyncio.Semaphore(limits.max_in_flight)
        self._guard = FloodGuard(
            limits.messages_per_second, limits.flood_close_after, time.monotonic
        )
        self.streams = StreamTable(
            connection.send, limits.max_streams_per_session, principal.client_id
        )
        self.accepting = True
        # Refusals run at most at four times the rate: each costs a fraction of a served message.
        self._refusal_pause = 0.25 / limits.messages_per_second
        self.refused = 0  # messages refused over the rate (diagnostics, tests)
        self._memory = memory or MemoryBudget(limits.memory_budget)
        # Shared by the client's sessions (the server keeps one per client id).
        self._costly = costly or TokenBucket(
            limits.costly_calls_burst, limits.costly_calls_per_second
        )

    @property
    def client_id(self) -> str:
        return self.principal.client_id

    @property
    def source(self) -> str:
        return self.principal.source

    def mark_dirty(self, device_id: str) -> None:
        self._dirty[device_id] = None
        self._dirty_event.set()

    def close_soon(self, code: int, reason: str) -> None:
        self._start(self.connection.close(code, reason))

    async def run(self, first: list[str]) -> None:
        """Send ``first`` (the login's end, the hello) in one segment, then serve until closed."""
        connection = self.connection
        pusher: asyncio.Task[None] | None = None
        try:
            # Sent apart, the first would wake the client, which can preempt the agent before the
            # second is written.
            with _corked(connection):
                for text in first:
                    await connection.send(text)
            pusher = asyncio.get_running_loop().create_task(self._push_states())
            async for frame in connection:
                if not self._guard.allow():
                    if self._guard.flooding:
                        self.log.log(
                            logging.WARNING,
                            "closing client %s from %s: message flood",
                            self.client_id,
                            self.source,
                            source=self.source,
                        )
                        # Counted like a failed login: a client that floods again and again after
                        # logging in again ends up blocked.
                        self.on_flood(self.source)
                        await connection.close(CloseCode.POLICY_VIOLATION, "message flood")
                        break
                    # Not parsed: the id comes from the first bytes, the answer is preformatted.
                    self.refused += 1
                    await self._send(_RATE_LIMITED % _id_text(peek_request_id(frame)))
                    # And the reader pauses a quarter of a message's worth: websockets stops
                    # reading the socket meanwhile (max_queue), so a flood is slowed by TCP
                    # itself instead of costing the agent a refusal per frame it can send.
                    await asyncio.sleep(self._refusal_pause)
                    continue
                await self._handle_frame(frame)
        except ConnectionClosed:
            pass
        finally:
            tasks = [*self._tasks]
            if pusher is not None:
                tasks.append(pusher)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.streams.close_all()

    async def _handle_frame(self, frame: str | bytes) -> None:
        # A message is held (its frame, then its parsed payload) until it is answered: at twice
        # its size against the agent's memory budget, so uploads in flight cannot add up.
        held = 2 * len(frame) if isinstance(frame, bytes) else len(frame)
        if not self._memory.reserve(held):
            refusal = Failure(
                m.ERR_REFUSED,
                f"the agent's memory budget ({self._memory.total // 2**20} MiB) is taken by "
                "messages and pictures in progress; try again later",
            )
            await self._send(encode_answer(peek_request_id(frame), refusal))
            return
        handed_over = False
        try:
            request_id, parsed = parse_request(frame, self.limits.max_text_message)
            if isinstance(parsed, Failure):
                await self._send(encode_answer(request_id, parsed))
            elif parsed.is_call and not self.accepting:
                # The agent is stopping: no new command may reach a device (pings still answer).
                refusal = Failure(m.ERR_REFUSED, "the agent is shutting down")
                await self._send(encode_answer(request_id, refusal))
            elif parsed.is_call:
                # Device actions may take a while (a snapshot, a fade): they run beside the
                # reader, at most max_in_flight at once, so one slow action does not stall it.
                await self._in_flight.acquire()
                task = self._start(self._answer_released(parsed))
                # Given back when the task ends, even one cancelled before it ran.
                task.add_done_callback(lambda _task: self._memory.release(held))
                handed_over = True
            else:
                await self._answer(parsed)
        finally:
            if not handed_over:
                self._memory.release(held)

    async def _answer_released(self, request: Request) -> None:
        try:
            await self._answer(request)
        finally:
            self._in_flight.release()

    async def _answer(self, request: Request) -> None:
        answer = await dispatch(
            self.devices, self.principal, request, self.streams, self.log, costly=self._costly
        )
        if isinstance(answer, StreamResult):
            with contextlib.suppress(ConnectionClosed):
                await self.streams.start(request.id, answer)
            return
        await self._send(encode_answer(request.id, answer))

    def _start(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _push_states(self) -> None:
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            dirty, self._dirty = self._dirty, {}
            for device_id in dirty:
                device = self.devices.get(device_id)
                if device is None:
                    continue
                with contextlib.suppress(ConnectionClosed):
                    await self.connection.send(
                        m.encode(m.STATE, device=device_id, state=device.state())
                    )

    async def _send(self, data: str | bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.connection.send(data)


_RATE_LIMITED = '{"v":1,"type":"error","id":%s,"code":"rate_limited","message":"too many messages"}'


def _id_text(request_id: int | None) -> str:
    return "null" if request_id is None else str(request_id)


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
