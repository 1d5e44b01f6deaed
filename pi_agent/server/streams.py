"""A session's streams: at most ``max_streams`` at once, each pumped by its own task.

The session numbers streams itself, so a client's reused request id cannot orphan one. A slow
client slows only its own pumps (``send`` waits for the socket) and the device keeps just the
newest frame for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable

from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.binary import encode_frame
from websockets.exceptions import ConnectionClosed

from pi_agent.devices.base import StreamResult

_LOGGER = logging.getLogger(__name__)

Send = Callable[[str | bytes], Awaitable[None]]


class StreamTable:
    def __init__(self, send: Send, max_streams: int, owner: str) -> None:
        self._send = send
        self._max = max_streams
        self._owner = owner
        self._ids = itertools.count(1)
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def full(self) -> bool:
        return len(self._tasks) >= self._max

    async def start(self, request_id: int | None, stream: StreamResult) -> None:
        """Answer the request with the stream's id, then pump its frames until it ends."""
        if self.full:
            # Checked again here: the device may have taken a while to open it.
            with contextlib.suppress(Exception):
                await stream.close()
            await self._send(
                m.encode(
                    m.ERROR,
                    id=request_id,
                    code=m.ERR_REFUSED,
                    message=f"this session already has {self._max} streams, the most it may hold",
                )
            )
            return
        stream_id = next(self._ids)
        await self._send(
            m.encode(
                m.RESULT,
                id=request_id,
                data={"stream": stream_id, "content_type": stream.content_type, **stream.meta},
            )
        )
        task = asyncio.get_running_loop().create_task(self._pump(stream_id, stream))
        self._tasks[stream_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(stream_id, None))

    def stop(self, stream_id: int) -> bool:
        task = self._tasks.pop(stream_id, None)
        if task is None:
            return False
        task.cancel()
        return True

    async def close_all(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _pump(self, stream_id: int, stream: StreamResult) -> None:
        seq = 0
        reason = "ended"
        try:
            async for frame in stream.frames:
                seq += 1
                await self._send(
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
            _LOGGER.warning("stream %d of %s failed: %s", stream_id, self._owner, err)
            reason = f"failed: {err}"
        finally:
            with contextlib.suppress(Exception):
                await stream.close()
            if reason != "stopped":
                # The device ended it: say so, so the client does not wait for frames.
                with contextlib.suppress(ConnectionClosed):
                    await self._send(m.encode(m.STREAM_END, stream=stream_id, reason=reason))
