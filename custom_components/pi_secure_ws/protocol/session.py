"""One logged-in connection: requests and their answers, pushed state, and streams.

A session ends once, when its connection does: every request still waiting then fails with the
reason the connection ended, every stream ends, and the owner is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from . import messages as m
from .binary import decode_frame, encode_frame
from .const import CloseCode
from .errors import (
    CannotConnect,
    CommandError,
    PiSecureWsError,
    RequestTimeout,
    closed_error,
    error_for_close,
)
from .models import BinaryPayload

_LOGGER = logging.getLogger(__name__)

STREAM_QUEUE = 2  # frames buffered per stream; older ones are dropped (the newest wins)

StateHandler = Callable[[str, dict[str, Any]], None]
EndHandler = Callable[["Session", Exception | None], None]


class ClientStream:
    """Frames of one stream; iterate with ``async for`` and ``await close()`` when done."""

    def __init__(self, session: Session, stream_id: int, header: dict[str, Any]) -> None:
        self._session = session
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
        self._session.streams.pop(self.stream_id, None)
        with contextlib.suppress(PiSecureWsError):
            await self._session.request(m.STREAM_STOP, stream=self.stream_id)
        self._push(None)


class Session:
    """Requests over one connection, and what the agent pushes on it."""

    def __init__(
        self,
        ws: ClientConnection,
        *,
        ids: Iterator[int],
        stats: dict[str, int],
        request_timeout: float,
        on_state: StateHandler,
        on_end: EndHandler,
        peer: str,
    ) -> None:
        self.ws = ws
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.streams: dict[int, ClientStream] = {}
        self.close_code: int | None = None
        # Request ids go on across sessions (the client's counter): one id, one request.
        self._ids = ids
        self._stats = stats
        self._request_timeout = request_timeout
        self._on_state = on_state
        self._on_end = on_end
        self._peer = peer
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    @property
    def alive(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def request(
        self,
        type_: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-request deadline is the API
        data: bytes | None = None,
        **fields: Any,
    ) -> Any:
        """Send one request; its result, a BinaryPayload, or a typed error (exactly one)."""
        if not self.alive:
            raise CannotConnect("not connected to the agent")
        ws = self.ws
        request_id = next(self._ids)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.pending[request_id] = future
        self._stats["requests"] += 1
        try:
            if data is None:
                await ws.send(m.encode(type_, id=request_id, **fields))
            else:
                header = {"v": 1, "type": type_, "id": request_id, **fields}
                await ws.send(encode_frame(header, data))
            # A timer that fails the future: the deadline of asyncio.timeout for less work on
            # every request.
            timer = loop.call_later(timeout or self._request_timeout, _time_out, future, type_)
            try:
                return await future
            finally:
                timer.cancel()
        except ConnectionClosed as err:
            raise closed_error(err) from None
        finally:
            self.pending.pop(request_id, None)

    def add_stream(self, stream_id: int, header: dict[str, Any]) -> ClientStream:
        stream = ClientStream(self, stream_id, header)
        if self.alive:
            self.streams[stream_id] = stream
        else:  # answered, then the connection ended: the stream is over before it starts
            stream.closed = True
            stream._push(None)
        return stream

    async def close(self) -> None:
        """End the session on purpose (the client closes)."""
        ws = self.ws
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await ws.close(CloseCode.NORMAL)
        await abort(ws)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self._fail_pending(CannotConnect("client closed"))

    async def _read_loop(self) -> None:
        ws = self.ws
        error: Exception | None = None
        try:
            async for frame in ws:
                if isinstance(frame, str):
                    self._handle_text(frame)
                else:
                    self._handle_binary(frame)
        except ConnectionClosed as err:
            error = closed_error(err)
        except PiSecureWsError as err:
            _LOGGER.warning("agent %s broke the protocol: %s", self._peer, err)
            error = err
        finally:
            await abort(ws)
            if error is None and ws.close_code is not None:
                error = error_for_close(ws.close_code, ws.close_reason)
            self._fail_pending(error or CannotConnect("connection closed"))
            for stream in list(self.streams.values()):
                stream._push(None)
            self.streams.clear()
            self.close_code = ws.close_code
            self._on_end(self, error)

    def _handle_text(self, frame: str) -> None:
        try:
            data = m.decode(frame, m.AGENT_SCHEMAS)
        except m.UnknownMessageType as err:
            _LOGGER.debug("ignoring a message from a newer agent: %s", err)
            return
        type_ = data["type"]
        if type_ == m.STATE:
            self._on_state(data["device"], data["state"])
        elif type_ == m.STREAM_END:
            stream = self.streams.pop(data["stream"], None)
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
            stream = self.streams.get(stream_id)
            if stream is not None:
                stream._push(payload)
            return
        request_id = header.get("id")
        if isinstance(request_id, int):
            self._resolve(request_id, BinaryPayload(header, payload))

    def _resolve(self, request_id: int, value: Any) -> None:
        future = self.pending.get(request_id)
        if future is not None and not future.done():
            future.set_result(value)

    def _reject(self, request_id: int, error: Exception) -> None:
        future = self.pending.get(request_id)
        if future is not None and not future.done():
            future.set_exception(error)

    def _fail_pending(self, error: Exception) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(error)
        self.pending.clear()


def _time_out(future: asyncio.Future[Any], type_: str) -> None:
    if not future.done():
        future.set_exception(RequestTimeout(f"no answer to {type_} within the timeout"))


async def abort(ws: ClientConnection) -> None:
    transport = ws.transport
    if transport is not None and not transport.is_closing():
        transport.abort()
