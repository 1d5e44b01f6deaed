"""The camera's stream pipeline: one capture loop fanned out to every subscriber.

The loop runs only while somebody watches (and ``linger`` seconds after), at the highest rate any
subscriber asked for. Each subscriber has a one-frame slot that the newest frame overwrites, so a
slow subscriber drops frames and never holds up the others or makes the agent buffer. How a frame
is captured, and what an error means, is the camera device's business: it hands the pipeline
callables for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable


class Subscriber:
    """One stream client: a one-frame slot, paced to the rate it asked for."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.period = 1.0 / fps
        self.slot: bytes | None = None
        self.ready = asyncio.Event()
        self.closed = False
        self.next_due = 0.0

    def offer(self, frame: bytes, now: float, tolerance: float) -> None:
        """Take ``frame`` if this subscriber is due one; an unsent older frame is dropped."""
        if self.closed or now < self.next_due - tolerance:
            return
        self.slot = frame
        self.ready.set()
        self.next_due += self.period
        if self.next_due < now - self.period:
            # After a stall (backend retry), pace from now rather than catch up with a burst.
            self.next_due = now + self.period

    def close(self) -> None:
        self.closed = True
        self.slot = None
        self.ready.set()

    async def frames(self) -> AsyncIterator[bytes]:
        while not self.closed:
            await self.ready.wait()
            self.ready.clear()
            frame, self.slot = self.slot, None
            if frame is not None and not self.closed:
                yield frame


class StreamPipeline:
    """The subscribers, and the capture loop that feeds them while there are any."""

    def __init__(
        self,
        *,
        capture: Callable[[], Awaitable[bytes]],
        release: Callable[[], Awaitable[None]],
        report: Callable[[str | None], None],
        on_change: Callable[[], None],
        on_end: Callable[[], None],
        linger: float,
        retry_initial: float,
        retry_max: float,
    ) -> None:
        self._capture = capture  # one JPEG frame from the camera; raises when it failed
        self._release = release  # let go of the camera (and its LED)
        self._report = report  # a capture failed (the reason), or worked again (None)
        self._on_change = on_change  # subscribers or streaming changed: push the state
        self._on_end = on_end  # the loop ended: nobody watches now
        self._linger = linger
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self.subscribers: list[Subscriber] = []
        self._subscribers_changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._winding_down: set[asyncio.Task[None]] = set()
        self.frames_captured = 0

    @property
    def running(self) -> bool:
        """Whether the capture loop holds the camera (streaming, or lingering)."""
        return self._task is not None

    @property
    def streaming(self) -> bool:
        return self._task is not None and bool(self.subscribers)

    def fps(self) -> float:
        if self._task is None or not self.subscribers:
            return 0.0
        return max(subscriber.fps for subscriber in self.subscribers)

    def pending_frames(self) -> int:
        """Frames waiting in subscriber slots: never more than one per subscriber."""
        return sum(1 for subscriber in self.subscribers if subscriber.slot is not None)

    def subscribe(self, fps: float) -> Subscriber:
        subscriber = Subscriber(fps)
        self.subscribers.append(subscriber)
        self._subscribers_changed.set()
        if self._task is None:
            self._task = asyncio.create_task(self._capture_loop(), name="camera-capture")
        self._on_change()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber not in self.subscribers:
            return
        subscriber.close()
        self.subscribers.remove(subscriber)
        self._subscribers_changed.set()
        if not self.subscribers and self._task is not None and self._linger <= 0:
            # With a linger the capture loop waits for a new subscriber and then ends itself.
            task, self._task = self._task, None
            task.cancel()
            # It still releases the camera on its way out: stop() waits for that.
            self._winding_down.add(task)
            task.add_done_callback(self._winding_down.discard)
        self._on_change()

    async def shut_down(self, *, wind_down: bool = False) -> None:
        """End every stream and the capture loop (and, with ``wind_down``, loops still ending)."""
        for subscriber in self.subscribers:
            subscriber.close()
        self.subscribers.clear()
        tasks = (self._task, *(self._winding_down if wind_down else ()))
        for task in tasks:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = None

    async def _capture_loop(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = self._retry_initial
        # Absolute deadlines: sleeping a period from each start would lose the wake-up overshoot
        # every frame (29 instead of 30 fps). A change of subscribers only re-reads the rate: it
        # never brings a capture forward nor pushes the next one back, so a client subscribing
        # and unsubscribing in a loop costs no captures and cannot stall the other streams.
        last_due = -math.inf
        try:
            while True:
                if not self.subscribers:
                    if not await self._linger_for_subscriber():
                        break
                    continue
                fps = max(subscriber.fps for subscriber in self.subscribers)
                period = 1.0 / fps
                now = loop.time()
                due = last_due + period
                if due < now - period:
                    due = now  # at the start or after a stall: start afresh, not with a burst
                if due > now:
                    await self._wait_for_change(due - now)
                    continue
                try:
                    frame = await self._capture()
                except Exception as err:
                    self._report(str(err) or type(err).__name__)
                    await self._release()
                    await self._wait_for_change(backoff)
                    backoff = min(backoff * 2, self._retry_max)
                    continue
                backoff = self._retry_initial
                self._report(None)
                self.frames_captured += 1
                last_due = due
                now = loop.time()
                for subscriber in list(self.subscribers):
                    subscriber.offer(frame, now, period / 2)
        finally:
            await self._release()
            if self._task is asyncio.current_task():
                self._task = None
                self._on_change()
            self._on_end()

    async def _linger_for_subscriber(self) -> bool:
        """Nobody watches: keep the pipeline ``linger`` seconds for a new subscriber.

        False when none came; the loop then gives up its place at once, so a subscriber that
        arrives while the camera is being released starts a fresh pipeline instead of joining this
        one. Captures keep their schedule across the wait: churn buys no extra frames.
        """
        if self._linger > 0:
            self._subscribers_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._linger):
                    while not self.subscribers:
                        await self._subscribers_changed.wait()
                        self._subscribers_changed.clear()
        if self.subscribers:
            return True
        if self._task is asyncio.current_task():
            self._task = None
            self._on_change()
        return False

    async def _wait_for_change(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less when subscribers come or go (the rate may change)."""
        self._subscribers_changed.clear()
        if delay <= 0:
            return
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._subscribers_changed.wait()
