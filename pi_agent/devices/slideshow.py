"""The slideshow: which pictures it shows, in which order, and when it moves on.

The folder is scanned again before every step (and after each upload or delete), so pictures
copied in or removed by any means are picked up without a restart. :class:`PictureOrder` is the
bookkeeping over those scans (no I/O); :class:`Slideshow` decodes the next readable picture, hands
it to the screen and moves on every interval, timed by an injectable wait so tests need no real
time. The position and settings are kept in ``frame.json`` so the frame resumes at the same picture
after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from bisect import bisect_left
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import voluptuous as vol
from PIL import Image

from pi_agent.state_store import StateStore

from .base import Refused
from .picture_decode import PictureDecoder, Size
from .picture_library import album_name, inside, scan_pictures

_LOGGER = logging.getLogger(__name__)


@dataclass
class FrameSettings:
    """What a client may change, kept in ``frame.json`` across restarts."""

    current: str | None = None
    paused: bool = False
    interval: float = 300.0
    shuffle: bool = False
    album: str | None = None
    brightness: int = 255
    display_on: bool = True
    seed: str = ""

    @classmethod
    def load(cls, store: StateStore, folder: Path, interval: float, shuffle: bool) -> FrameSettings:
        """Persisted settings win over the configured defaults: a client changed them."""
        settings = cls(interval=interval, shuffle=shuffle)
        current = store.get("current")
        if isinstance(current, str):
            settings.current = current
        try:
            album = album_name(store.get("album"))
        except vol.Invalid:
            album = None  # a hand-edited state file: show every picture rather than fail
        if album is not None and (folder / album).is_dir():
            settings.album = album
        for key, kind in (("paused", bool), ("shuffle", bool), ("display_on", bool)):
            value = store.get(key)
            if isinstance(value, kind):
                setattr(settings, key, value)
        stored_interval = store.get("interval")
        if isinstance(stored_interval, int | float) and stored_interval > 0:
            settings.interval = float(stored_interval)
        brightness = store.get("brightness")
        if isinstance(brightness, int) and 0 <= brightness <= 255:
            settings.brightness = brightness
        seed = store.get("seed")
        settings.seed = seed if isinstance(seed, str) and seed else secrets.token_hex(8)
        return settings

    def save(self, store: StateStore) -> None:
        for key, value in vars(self).items():
            store.set(key, value)


class PictureOrder:
    """The readable pictures of the last scan, in showing order."""

    def __init__(self, settings: FrameSettings) -> None:
        self._settings = settings
        self.names: list[str] = []
        self.mtimes: dict[str, int] = {}
        # Pictures that failed to decode, with the mtime they had: tried again once they change.
        self._unreadable: dict[str, int] = {}

    def update(self, found: dict[str, int]) -> None:
        """Take a scan's result (name -> mtime in ns)."""
        for name, mtime in list(self._unreadable.items()):
            if found.get(name) != mtime:
                del self._unreadable[name]  # gone or replaced: worth another try
        self.mtimes = {
            name: mtime for name, mtime in found.items() if self._unreadable.get(name) != mtime
        }
        self.names = sorted(self.mtimes, key=self.sort_key)

    def sort_key(self, name: str) -> str:
        if not self._settings.shuffle:
            return name
        # A shuffle that is stable across rescans and restarts: new pictures slot in somewhere,
        # removed ones leave no gap, and the order survives in the seed.
        return hashlib.sha256(f"{self._settings.seed}/{name}".encode()).hexdigest()

    def index(self, name: str | None) -> int | None:
        return self.names.index(name) if name in self.names else None

    def candidates(self, current: str | None, delta: int) -> list[str]:
        """Every picture once, in the order to try them going ``delta`` (+1 or -1) on."""
        order = self.names
        if current in order:
            position = order.index(current)
        else:
            # The current picture is gone: continue from where it stood in the order.
            keys = [self.sort_key(name) for name in order]
            insertion = 0 if current is None else bisect_left(keys, self.sort_key(current))
            position = insertion - 1 if delta > 0 else insertion
        return [order[(position + delta * step) % len(order)] for step in range(1, len(order) + 1)]

    def drop_unreadable(self, name: str) -> None:
        mtime = self.mtimes.pop(name, None)
        if mtime is not None:
            self._unreadable[name] = mtime
        if name in self.names:
            self.names.remove(name)


class Screen(Protocol):
    """Where the slideshow puts its pictures (the frame's renderer)."""

    size: Size

    def show(self, image: Image.Image) -> None: ...


# Waits ``seconds`` or until the event is set: True when the time passed.
IntervalWait = Callable[[float, asyncio.Event], Awaitable[bool]]


async def wait_interval(seconds: float, reset: asyncio.Event) -> bool:
    """True once ``seconds`` have passed; False as soon as ``reset`` is set."""
    try:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that arrives
        # just as the event is set, and stop() would wait forever.
        async with asyncio.timeout(seconds):
            await reset.wait()
    except TimeoutError:
        return True
    return False


class Slideshow:
    """Shows the folder's pictures one after another; every change goes through ``lock``."""

    def __init__(
        self,
        folder: Path,
        settings: FrameSettings,
        store: StateStore,
        *,
        screen: Screen,
        decoder: PictureDecoder,
        notify: Callable[[], None],
        wait: IntervalWait = wait_interval,
    ) -> None:
        self._folder = folder
        self._settings = settings
        self._store = store
        self._screen = screen
        self._decoder = decoder
        self._notify = notify
        self._wait = wait
        self.order = PictureOrder(settings)
        self.lock = asyncio.Lock()
        self._timer_reset = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def index(self) -> int | None:
        """Where the picture on screen stands in the order (None: nothing shown)."""
        return self.order.index(self._settings.current)

    @property
    def count(self) -> int:
        return len(self.order.names)

    async def start(self) -> None:
        """Resume at the saved picture (or the first readable one), then run the timer."""
        async with self.lock:
            await self.rescan()
            resumed = self._settings.current
            if (
                resumed is None
                or resumed not in self.order.names
                or not await self.display(resumed)
            ):
                await self.step(+1)
        self._notify()
        self._task = asyncio.create_task(self._run(), name="frame-slideshow")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def restart_timer(self) -> None:
        """A manual change: the next automatic step is a full interval away."""
        self._timer_reset.set()

    async def _run(self) -> None:
        while True:
            self._timer_reset.clear()
            if not await self._wait(self._settings.interval, self._timer_reset):
                continue
            try:
                async with self.lock:
                    if self._settings.paused or not self._settings.display_on:
                        await self.refresh()
                    else:
                        await self.step(+1)
            except Exception:
                _LOGGER.exception("picture frame: advancing the slideshow failed")

    # What clients ask for

    async def move(self, delta: int) -> None:
        async with self.lock:
            await self.step(delta)
        self.restart_timer()

    async def show(self, name: str) -> None:
        async with self.lock:
            await self.rescan()
            if name not in self.order.names:
                album = self._settings.album
                where = f" in album {album!r}" if album else ""
                raise Refused(f"there is no readable picture named {name!r}{where}")
            if not await self.display(name):
                raise Refused(f"{name!r} cannot be read as a picture")
        self.restart_timer()

    async def set_shuffle(self, shuffle: bool) -> None:
        async with self.lock:
            if shuffle and not self._settings.shuffle:
                self._settings.seed = secrets.token_hex(8)  # a fresh order each time it is enabled
            self._settings.shuffle = shuffle
            await self.rescan()

    async def set_album(self, album: str | None) -> None:
        async with self.lock:
            if album is not None:
                directory = self._folder / album
                if not directory.is_dir() or not inside(self._folder, directory):
                    raise Refused(f"there is no album (sub-folder) named {album!r}")
                found = await asyncio.to_thread(scan_pictures, self._folder, album)
                if not found:
                    raise Refused(f"album {album!r} has no pictures")
            self._settings.album = album
            await self.rescan()
            if self._settings.current not in self.order.names:
                self._settings.current = None
                await self.step(+1)

    async def picture_saved(self, name: str) -> None:
        """An upload landed: show it on an empty frame, or again when it replaced the one shown."""
        async with self.lock:
            if self._settings.current is None:
                await self.step(+1)
            elif self._settings.current == name:
                await self.rescan()
                await self.display(name)
            else:
                await self.refresh()

    async def library_changed(self) -> None:
        async with self.lock:
            await self.refresh()

    # The steps; the caller holds the lock

    async def rescan(self) -> None:
        found = await asyncio.to_thread(scan_pictures, self._folder, self._settings.album)
        self.order.update(found)

    async def refresh(self) -> None:
        """Pick up added and removed pictures without moving on (paused or screen off)."""
        before = (self.count, self.index())
        await self.rescan()
        current = self._settings.current
        if current is not None and current not in self.order.names:
            await self.step(+1)
        elif (self.count, self.index()) != before:
            self._notify()

    async def step(self, delta: int) -> None:
        """Show the next (+1) or previous (-1) readable picture; rescans first."""
        await self.rescan()
        candidates = self.order.candidates(self._settings.current, delta)
        for candidate in candidates:
            if await self.display(candidate):
                return
        if candidates:
            _LOGGER.warning("picture frame: none of the %d pictures could be read", len(candidates))
        self._show_nothing()

    def _show_nothing(self) -> None:
        self._settings.current = None
        self._screen.show(Image.new("RGB", (1, 1)))  # black, scaled to the screen
        self._settings.save(self._store)
        self._notify()

    async def display(self, name: str) -> bool:
        """Decode and show ``name``; False (and a log line) when it cannot be read."""
        try:
            image = await self._decoder.load(self._folder / name, self._screen.size)
        except Exception as err:
            _LOGGER.warning("picture frame: skipping unreadable picture %s: %s", name, err)
            self.order.drop_unreadable(name)
            return False
        self._screen.show(image)
        self._settings.current = name
        self._settings.save(self._store)
        self._notify()
        return True
