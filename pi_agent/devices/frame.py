"""The picture frame: a slideshow of a folder's JPEG and PNG pictures on the Pi's screen.

The folder is the source of truth: it is scanned again on every tick of the slideshow (and after
each upload or delete), so pictures copied in or removed by any means are picked up without a
restart. Decoding runs on worker threads and drawing on the renderer's own thread
(:mod:`frame_display`); the event loop only decides what to show. The position and settings are
kept in ``frame.json`` so the frame resumes at the same picture after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import os
import secrets
import threading
import warnings
from bisect import bisect_left
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Final, TypeVar

import voluptuous as vol
from pi_secure_ws_protocol.const import Role
from PIL import Image, ImageOps

from pi_agent.fsutil import atomic_write
from pi_agent.memory_budget import MemoryBudget
from pi_agent.state_store import StateStore

from .base import (
    Action,
    BinaryResult,
    CallContext,
    Device,
    DeviceContext,
    DeviceError,
    Handler,
    Refused,
)
from .display_power import UNSUPPORTED, probe_backlight, probe_display_power
from .frame_display import FrameRenderer

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

CONFIG_KEY: Final = "frame"
DEVICE_ID: Final = "frame"
STATE_FILE_NAME: Final = "frame.json"
PICTURE_SUFFIXES: Final = (".jpg", ".jpeg", ".png")
_FORMAT_SUFFIXES: Final = {"JPEG": (".jpg", ".jpeg"), "PNG": (".png",)}
MIB: Final = 1024 * 1024
# Decode budgets (the [frame] section may lower or raise them): a 250 KB PNG can hold 64 Mpx,
# and each decoded megapixel costs 3-4 MB. Pictures over them are refused before decoding.
MAX_PICTURE_PIXELS: Final = 16_000_000
MAX_DECODED_BYTES: Final = 96 * 1024 * 1024
THUMBNAIL_SOURCE_SIDE: Final = 2048  # the largest thumbnail; every size is made from one copy
MAX_DECODES: Final = 1  # decodes at once, per frame device: each holds a whole decoded picture
MAX_NAME_LENGTH: Final = 255
# Pictures are not secrets: other local users (a web gallery, Samba) may read them.
PICTURE_FILE_MODE: Final = 0o644
THUMBNAIL_QUALITY: Final = 85
DECODE_NICENESS: Final = 10  # added to a decode thread's nice value

_seconds = vol.All(vol.Any(int, float), vol.Coerce(float))

CONFIG_SCHEMA: Final = vol.Schema(
    {
        vol.Optional("name", default="Picture frame"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Optional("folder", default="pictures"): vol.All(str, vol.Length(min=1)),
        # Every picture is a state change Home Assistant records: 5 minutes is 288 a day.
        vol.Optional("interval", default=300.0): vol.All(_seconds, vol.Range(min=1, max=86400)),
        vol.Optional("shuffle", default=False): bool,
        vol.Optional("crossfade", default=1.0): vol.All(_seconds, vol.Range(min=0, max=10)),
        vol.Optional("max_upload_bytes", default=10 * MIB): vol.All(
            int, vol.Range(min=1024, max=256 * MIB)
        ),
        vol.Optional("width", default=800): vol.All(int, vol.Range(min=16, max=8192)),
        vol.Optional("height", default=480): vol.All(int, vol.Range(min=16, max=8192)),
        vol.Optional("thumbnail_size", default=320): vol.All(int, vol.Range(min=16, max=2048)),
        vol.Optional("max_picture_pixels", default=MAX_PICTURE_PIXELS): vol.All(
            int, vol.Range(min=100_000, max=100_000_000)
        ),
        vol.Optional("max_decoded_bytes", default=MAX_DECODED_BYTES): vol.All(
            int, vol.Range(min=MIB, max=1024 * MIB)
        ),
        vol.Optional("max_decodes", default=MAX_DECODES): vol.All(int, vol.Range(min=1, max=8)),
    },
    extra=vol.PREVENT_EXTRA,
)


def used_pins(section: Any) -> list[tuple[str, int]]:
    """The screen has its own connector: no GPIO pins."""
    return []


def create(section: Mapping[str, Any], ctx: DeviceContext) -> list[Device]:
    folder = Path(section["folder"])
    if not folder.is_absolute():
        folder = ctx.state_dir / folder
    return [
        PictureFrameDevice(
            folder,
            ctx.state_dir / STATE_FILE_NAME,
            name=section["name"],
            interval=section["interval"],
            shuffle=section["shuffle"],
            crossfade=section["crossfade"],
            max_upload_bytes=section["max_upload_bytes"],
            width=section["width"],
            height=section["height"],
            thumbnail_size=section["thumbnail_size"],
            budget=DecodeBudget(
                section["max_picture_pixels"],
                section["max_decoded_bytes"],
                section["max_decodes"],
                ctx.memory,
            ),
        )
    ]


# Names: relative paths inside the pictures folder, checked before they touch the file system.


def _relative_parts(value: Any, what: str) -> list[str]:
    if not isinstance(value, str) or not value:
        raise vol.Invalid(f"expected a {what} (non-empty text)")
    if len(value) > MAX_NAME_LENGTH:
        raise vol.Invalid(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if "\\" in value or any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise vol.Invalid(f"{what} contains a backslash or a control character")
    if PurePosixPath(value).is_absolute():
        raise vol.Invalid(f"{what} must be relative to the pictures folder")
    parts = value.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise vol.Invalid(f"{what} may not contain '..', '.' or empty path parts")
        if part.startswith("."):
            raise vol.Invalid(f"{what} may not contain hidden names (starting with '.')")
    return parts


def picture_name(value: Any) -> str:
    """A voluptuous validator: a safe picture path like ``holidays/beach.jpg``."""
    parts = _relative_parts(value, "picture name")
    if not parts[-1].lower().endswith(PICTURE_SUFFIXES):
        raise vol.Invalid(f"picture name must end in {', '.join(PICTURE_SUFFIXES)}")
    return "/".join(parts)


def album_name(value: Any) -> str | None:
    """A voluptuous validator: a sub-folder of the pictures folder, or None for all pictures."""
    if value is None:
        return None
    return "/".join(_relative_parts(value, "album"))


# Blocking picture work, run on worker threads.


def scan_pictures(folder: Path, album: str | None) -> dict[str, int]:
    """Every picture under ``folder/album``: name (relative to ``folder``) -> mtime in ns.

    Hidden files and folders are skipped (that includes uploads still being written), and so are
    symbolic links to folders, which could lead anywhere.
    """
    top = folder / album if album else folder
    found: dict[str, int] = {}
    for directory, subdirs, files in os.walk(top):
        subdirs[:] = [name for name in subdirs if not name.startswith(".")]
        for file_name in files:
            if file_name.startswith(".") or not file_name.lower().endswith(PICTURE_SUFFIXES):
                continue
            path = Path(directory, file_name)
            try:
                mtime = path.stat().st_mtime_ns
            except OSError:
                continue  # removed while scanning
            found[path.relative_to(folder).as_posix()] = mtime
    return found


def list_albums(folder: Path) -> list[str]:
    try:
        return sorted(
            entry.name
            for entry in folder.iterdir()
            if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith(".")
        )
    except OSError:
        return []


@dataclass(frozen=True)
class DecodeBudget:
    """What one picture may cost to decode, and how many decode at once."""

    max_pixels: int = MAX_PICTURE_PIXELS
    max_bytes: int = MAX_DECODED_BYTES
    max_decodes: int = MAX_DECODES
    # The agent's memory budget: each decode holds its decoded bytes against it while it runs.
    memory: MemoryBudget | None = None

    def check_pixels(self, image: Image.Image) -> None:
        """Refuse, from the header alone, a picture with more pixels than the budget."""
        pixels = image.width * image.height
        if pixels > self.max_pixels:
            raise ValueError(
                f"{image.width}x{image.height} is {pixels / 1e6:.1f} Mpx; "
                f"the limit is {self.max_pixels / 1e6:.1f} Mpx"
            )

    def check_bytes(self, image: Image.Image) -> int:
        """Refuse a decode over the memory budget (after draft(): JPEG counts reduced)."""
        decoded = image.width * image.height * _bytes_per_pixel(image.mode)
        if decoded > self.max_bytes:
            raise ValueError(
                f"{image.width}x{image.height} {image.mode} decodes to {decoded // MIB} MiB; "
                f"the limit is {self.max_bytes // MIB} MiB"
            )
        return decoded

    def held(self, image: Image.Image) -> contextlib.AbstractContextManager[None]:
        """Check ``image``'s decode and hold its bytes against the agent's memory while inside."""
        decoded = self.check_bytes(image)
        if self.memory is None:
            return contextlib.nullcontext()
        return self.memory.held(decoded, "decoding the picture")


def _bytes_per_pixel(mode: str) -> int:
    # What the decoded picture and its RGB conversion hold at once, per pixel.
    try:
        bands = Image.getmodebands(mode)
    except (KeyError, ValueError):
        bands = 4
    depth = 4 if mode in ("I", "F") else 2 if ";16" in mode else 1
    return max(bands * depth, 3) + 3


def load_picture(
    path: Path, target: tuple[int, int], budget: DecodeBudget | None = None
) -> Image.Image:
    """Decode ``path`` upright (EXIF orientation applied), reduced early when it is far bigger."""
    budget = budget or DecodeBudget()
    with Image.open(path) as opened:
        budget.check_pixels(opened)
        # JPEG can decode at 1/2, 1/4, 1/8 scale: a big speed-up on a Pi. Either side may end up
        # horizontal after rotation, so ask for the larger screen side both ways.
        side = max(target)
        opened.draft("RGB", (side, side))
        with budget.held(opened):
            # One decoded copy at a time: turned in place, converted only when not RGB already.
            opened.load()
            try:
                ImageOps.exif_transpose(opened, in_place=True)
            except Exception as err:  # a broken EXIF block should not hide a good picture
                _LOGGER.debug("ignoring the EXIF orientation of %s: %s", path, err)
            # Reduced by a whole factor at once (a PNG cannot be drafted): only a copy near the
            # size shown outlives this call, not the whole decoded picture.
            # A loaded image outlives the closed file.
            image: Image.Image = opened if opened.mode == "RGB" else opened.convert("RGB")
            scale = min(target[0] / image.width, target[1] / image.height)
            return image.reduce(int(1 / scale)) if scale < 0.5 else image


def load_thumbnail_source(path: Path, budget: DecodeBudget | None = None) -> Image.Image:
    """The picture reduced to the largest thumbnail: decoded once, every size made from it."""
    side = THUMBNAIL_SOURCE_SIDE
    image = load_picture(path, (side, side), budget)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return image


def make_thumbnail(source: Image.Image, size: int) -> tuple[bytes, tuple[int, int]]:
    image = source.copy()
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue(), image.size


def check_upload(data: bytes, name: str, budget: DecodeBudget | None = None) -> tuple[int, int]:
    """Decode an uploaded picture; ValueError says why it is not acceptable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format or "unknown"
                if kind not in _FORMAT_SUFFIXES:
                    raise ValueError(f"{kind} data: only JPEG and PNG pictures are accepted")
                if not name.lower().endswith(_FORMAT_SUFFIXES[kind]):
                    raise ValueError(f"the data is a {kind} picture but the name ends otherwise")
                budget = budget or DecodeBudget()
                budget.check_pixels(image)
                size = (image.width, image.height)
                # JPEG decodes at 1/8 scale: every byte is still read, so a truncated or corrupt
                # picture fails here, not on screen, for an eighth of the memory.
                image.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
                with budget.held(image):
                    image.load()
                return size
    except ValueError:
        raise
    except Exception as err:
        raise ValueError(f"not a readable picture ({err})") from err


def _lower_priority() -> None:
    """Decode threads yield the CPU to logins and commands (Linux nice is per thread)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DECODE_NICENESS)


_NO_PARAMS: Final = vol.Schema({})
_NAME_SCHEMA: Final = vol.Schema({vol.Required("name"): picture_name})
_INTERVAL_SCHEMA: Final = vol.Schema(
    {vol.Required("seconds"): vol.All(vol.Coerce(float), vol.Range(min=1, max=86400))}
)
_SHUFFLE_SCHEMA: Final = vol.Schema({vol.Required("shuffle"): vol.Boolean()})
_ALBUM_SCHEMA: Final = vol.Schema({vol.Required("album"): album_name})
_DISPLAY_SCHEMA: Final = vol.Schema({vol.Required("on"): vol.Boolean()})
_BRIGHTNESS_SCHEMA: Final = vol.Schema(
    {vol.Required("brightness"): vol.All(vol.Coerce(int), vol.Range(min=0, max=255))}
)
# The data arrives as the payload of a binary frame.
_PUT_SCHEMA: Final = vol.Schema({vol.Required("name"): picture_name, vol.Required("data"): bytes})
_THUMBNAIL_SCHEMA: Final = vol.Schema(
    {vol.Optional("size"): vol.All(vol.Coerce(int), vol.Range(min=16, max=2048))}
)


def _inside(folder: Path, path: Path) -> bool:
    """Whether ``path`` stays inside ``folder`` once symbolic links are followed."""
    return path.resolve().is_relative_to(folder.resolve())


@dataclass
class _Settings:
    current: str | None = None
    paused: bool = False
    interval: float = 300.0
    shuffle: bool = False
    album: str | None = None
    brightness: int = 255
    display_on: bool = True
    seed: str = ""


class PictureFrameDevice(Device):
    """Slideshow, uploads, thumbnails, screen power and brightness."""

    kind = "picture_frame"

    def __init__(
        self,
        folder: Path,
        state_file: Path,
        *,
        device_id: str = DEVICE_ID,
        name: str = "Picture frame",
        interval: float = 300.0,
        shuffle: bool = False,
        crossfade: float = 1.0,
        max_upload_bytes: int = 10 * MIB,
        width: int = 800,
        height: int = 480,
        thumbnail_size: int = 320,
        budget: DecodeBudget | None = None,
        root: Path = Path("/"),
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(device_id, name)
        self._folder = folder
        self._store = StateStore(state_file)
        self._max_upload = max_upload_bytes
        self._thumbnail_size = thumbnail_size
        self._budget = budget or DecodeBudget()
        # Each decode holds a whole picture: a viewer's eight thumbnails at once must not be eight.
        self._decodes = asyncio.Semaphore(self._budget.max_decodes)
        # Their own threads: memory a decode frees stays with the thread's malloc arena, and any
        # pool thread decoding would keep a picture's worth of memory each.
        self._decoder: ThreadPoolExecutor | None = None
        self._renderer = FrameRenderer(width, height, crossfade)
        self._power = probe_display_power(root, env)
        self._backlight = probe_backlight(root)
        self._settings = self._load_settings(interval, shuffle)
        self._order: list[str] = []
        self._mtimes: dict[str, int] = {}
        # Pictures that failed to decode, with the mtime they had: tried again once they change.
        self._unreadable: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._timer_reset = asyncio.Event()
        self._slideshow: asyncio.Task[None] | None = None
        self._thumbnail_cache: tuple[tuple[str, int, int], bytes, tuple[int, int]] | None = None
        self._thumbnail_source: tuple[tuple[str, int], Image.Image] | None = None
        self._actions = self._build_actions()

    # Device interface

    def capabilities(self) -> dict[str, Any]:
        return {
            "display_power": self._power.method != UNSUPPORTED,
            "display_method": self._power.method,
            "backlight": self._backlight is not None,
            "albums": list_albums(self._folder),
            "max_upload_bytes": self._max_upload,
            "thumbnail_size": self._thumbnail_size,
        }

    def state(self) -> dict[str, Any]:
        settings = self._settings
        current = settings.current
        return {
            "current": current,
            "index": self._order.index(current) if current in self._order else None,
            "count": len(self._order),
            "paused": settings.paused,
            "interval": settings.interval,
            "shuffle": settings.shuffle,
            "display_on": settings.display_on,
            "display_method": self._power.method,
            "brightness": settings.brightness,
            "album": settings.album,
            "error": self._renderer.error,
        }

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    async def start(self) -> None:
        await asyncio.to_thread(self._folder.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self._renderer.start)
        try:
            await self._apply_brightness(self._settings.brightness)
            if not self._settings.display_on:
                await self._apply_display(False)
        except DeviceError as err:
            _LOGGER.warning("picture frame: restoring the screen settings failed: %s", err)
        async with self._lock:
            await self._rescan()
            resumed = self._settings.current
            if resumed is None or resumed not in self._order or not await self._display(resumed):
                await self._step(+1)
        self.notify_state()
        self._slideshow = asyncio.create_task(self._run_slideshow(), name="frame-slideshow")

    async def stop(self) -> None:
        if self._slideshow is not None:
            self._slideshow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._slideshow
            self._slideshow = None
        self._store.flush()
        await asyncio.to_thread(self._renderer.close)
        if self._decoder is not None:
            self._decoder.shutdown(wait=False, cancel_futures=True)
            self._decoder = None

    async def _decode(self, function: Callable[..., _T], *args: Any) -> _T:
        if self._decoder is None:
            self._decoder = ThreadPoolExecutor(
                max_workers=self._budget.max_decodes,
                thread_name_prefix="frame-decode",
                initializer=_lower_priority,
            )
        return await asyncio.get_running_loop().run_in_executor(self._decoder, function, *args)

    async def screenshot(self) -> Image.Image:
        """What the screen shows now (diagnostics and tests)."""
        return await asyncio.wrap_future(self._renderer.screenshot())

    # The slideshow

    async def _run_slideshow(self) -> None:
        while True:
            self._timer_reset.clear()
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that arrives just as the event is set, and stop() would wait forever.
                async with asyncio.timeout(self._settings.interval):
                    await self._timer_reset.wait()
                continue  # a manual change: start a full interval again
            except TimeoutError:
                pass
            try:
                async with self._lock:
                    if self._settings.paused or not self._settings.display_on:
                        await self._refresh_library()
                    else:
                        await self._step(+1)
            except Exception:
                _LOGGER.exception("picture frame: advancing the slideshow failed")

    def _restart_timer(self) -> None:
        self._timer_reset.set()

    async def _rescan(self) -> None:
        found = await asyncio.to_thread(scan_pictures, self._folder, self._settings.album)
        for name, mtime in list(self._unreadable.items()):
            if found.get(name) != mtime:
                del self._unreadable[name]  # gone or replaced: worth another try
        self._mtimes = {
            name: mtime for name, mtime in found.items() if self._unreadable.get(name) != mtime
        }
        self._order = sorted(self._mtimes, key=self._sort_key)

    def _sort_key(self, name: str) -> str:
        if not self._settings.shuffle:
            return name
        # A shuffle that is stable across rescans and restarts: new pictures slot in somewhere,
        # removed ones leave no gap, and the order survives in the seed.
        return hashlib.sha256(f"{self._settings.seed}/{name}".encode()).hexdigest()

    async def _refresh_library(self) -> None:
        """Pick up added and removed pictures without moving on (paused or screen off)."""
        before = (len(self._order), self.state()["index"])
        await self._rescan()
        current = self._settings.current
        if current is not None and current not in self._order:
            await self._step(+1)
        elif (len(self._order), self.state()["index"]) != before:
            self.notify_state()

    async def _step(self, delta: int) -> None:
        """Show the next (+1) or previous (-1) readable picture; rescans first. Hold the lock."""
        await self._rescan()
        order = list(self._order)
        if not order:
            self._show_nothing()
            return
        current = self._settings.current
        if current in order:
            position = order.index(current)
        else:
            # The current picture is gone: continue from where it stood in the order.
            keys = [self._sort_key(name) for name in order]
            insertion = 0 if current is None else bisect_left(keys, self._sort_key(current))
            position = insertion - 1 if delta > 0 else insertion
        for attempt in range(1, len(order) + 1):
            candidate = order[(position + delta * attempt) % len(order)]
            if await self._display(candidate):
                return
        _LOGGER.warning("picture frame: none of the %d pictures could be read", len(order))
        self._show_nothing()

    def _show_nothing(self) -> None:
        self._settings.current = None
        self._renderer.show(Image.new("RGB", (1, 1)))  # black, scaled to the screen
        self._save()
        self.notify_state()

    async def _display(self, name: str) -> bool:
        """Decode and show ``name``; False (and a log line) when it cannot be read."""
        try:
            async with self._decodes:
                image = await self._decode(
                    load_picture, self._folder / name, self._renderer.size, self._budget
                )
        except Exception as err:
            _LOGGER.warning("picture frame: skipping unreadable picture %s: %s", name, err)
            mtime = self._mtimes.pop(name, None)
            if mtime is not None:
                self._unreadable[name] = mtime
            if name in self._order:
                self._order.remove(name)
            return False
        self._renderer.show(image)
        self._settings.current = name
        self._save()
        self.notify_state()
        return True

    # Settings

    def _load_settings(self, interval: float, shuffle: bool) -> _Settings:
        """Persisted settings win over the configured defaults: a client changed them."""
        store = self._store
        settings = _Settings(interval=interval, shuffle=shuffle)
        current = store.get("current")
        if isinstance(current, str):
            settings.current = current
        try:
            album = album_name(store.get("album"))
        except vol.Invalid:
            album = None  # a hand-edited state file: show every picture rather than fail
        if album is not None and (self._folder / album).is_dir():
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

    def _save(self) -> None:
        for key, value in vars(self._settings).items():
            self._store.set(key, value)

    async def _apply_display(self, on: bool) -> None:
        await self._power.set_power(on)
        # Also blank the picture itself: with no power control a black screen is the best we can
        # do, and with one it hides the picture while the panel powers down.
        self._renderer.set_blank(not on)

    async def _apply_brightness(self, brightness: int) -> None:
        if self._backlight is not None:
            await self._backlight.set_level(brightness)
            self._renderer.set_brightness(255)
        else:
            self._renderer.set_brightness(brightness)

    # Actions

    def _build_actions(self) -> dict[str, Action]:
        control: list[tuple[str, Handler, vol.Schema]] = [
            ("next", self._handle_next, _NO_PARAMS),
            ("previous", self._handle_previous, _NO_PARAMS),
            ("pause", self._handle_pause, _NO_PARAMS),
            ("resume", self._handle_resume, _NO_PARAMS),
            ("show", self._handle_show, _NAME_SCHEMA),
            ("set_interval", self._handle_set_interval, _INTERVAL_SCHEMA),
            ("set_shuffle", self._handle_set_shuffle, _SHUFFLE_SCHEMA),
            ("set_album", self._handle_set_album, _ALBUM_SCHEMA),
            ("set_display", self._handle_set_display, _DISPLAY_SCHEMA),
            ("set_brightness", self._handle_set_brightness, _BRIGHTNESS_SCHEMA),
            ("put_picture", self._handle_put_picture, _PUT_SCHEMA),
            ("delete_picture", self._handle_delete_picture, _NAME_SCHEMA),
        ]
        actions = {name: Action(name, handler, schema) for name, handler, schema in control}
        actions["put_picture"] = replace(actions["put_picture"], costly=True)
        actions["thumbnail"] = Action(
            "thumbnail", self._handle_thumbnail, _THUMBNAIL_SCHEMA, Role.VIEWER, costly=True
        )
        return actions

    async def _handle_next(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        async with self._lock:
            await self._step(+1)
        self._restart_timer()
        return self.state()

    async def _handle_previous(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        async with self._lock:
            await self._step(-1)
        self._restart_timer()
        return self.state()

    async def _handle_pause(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        return self._change(paused=True)

    async def _handle_resume(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        return self._change(paused=False)

    def _change(self, **changes: Any) -> dict[str, Any]:
        for key, value in changes.items():
            setattr(self._settings, key, value)
        self._save()
        self._restart_timer()
        self.notify_state()
        return self.state()

    async def _handle_show(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        name = params["name"]
        async with self._lock:
            await self._rescan()
            if name not in self._order:
                album = self._settings.album
                where = f" in album {album!r}" if album else ""
                raise Refused(f"there is no readable picture named {name!r}{where}")
            if not await self._display(name):
                raise Refused(f"{name!r} cannot be read as a picture")
        self._restart_timer()
        return self.state()

    async def _handle_set_interval(
        self, params: dict[str, Any], call: CallContext
    ) -> dict[str, Any]:
        return self._change(interval=float(params["seconds"]))

    async def _handle_set_shuffle(
        self, params: dict[str, Any], call: CallContext
    ) -> dict[str, Any]:
        shuffle = bool(params["shuffle"])
        async with self._lock:
            if shuffle and not self._settings.shuffle:
                self._settings.seed = secrets.token_hex(8)  # a fresh order each time it is enabled
            self._settings.shuffle = shuffle
            await self._rescan()
        return self._change()

    async def _handle_set_album(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        album = params["album"]
        async with self._lock:
            if album is not None:
                directory = self._folder / album
                if not directory.is_dir() or not _inside(self._folder, directory):
                    raise Refused(f"there is no album (sub-folder) named {album!r}")
                found = await asyncio.to_thread(scan_pictures, self._folder, album)
                if not found:
                    raise Refused(f"album {album!r} has no pictures")
            self._settings.album = album
            await self._rescan()
            if self._settings.current not in self._order:
                self._settings.current = None
                await self._step(+1)
        return self._change()

    async def _handle_set_display(
        self, params: dict[str, Any], call: CallContext
    ) -> dict[str, Any]:
        on = bool(params["on"])
        await self._apply_display(on)
        self._change(display_on=on)
        return {"display_on": on, "display_method": self._power.method}

    async def _handle_set_brightness(
        self, params: dict[str, Any], call: CallContext
    ) -> dict[str, Any]:
        brightness = int(params["brightness"])
        await self._apply_brightness(brightness)
        self._change(brightness=brightness)
        method = "backlight" if self._backlight is not None else "software"
        return {"brightness": brightness, "method": method}

    async def _handle_put_picture(
        self, params: dict[str, Any], call: CallContext
    ) -> dict[str, Any]:
        name: str = params["name"]
        data: bytes = params["data"]
        if len(data) > self._max_upload:
            raise Refused(f"the picture is {len(data)} bytes; the limit is {self._max_upload}")
        try:
            async with self._decodes:
                width, height = await self._decode(check_upload, data, name, self._budget)
        except ValueError as err:
            raise Refused(f"{name!r} was not accepted: {err}") from None
        target = self._folder / name
        replaced = target.exists()
        try:
            await asyncio.to_thread(self._write_picture, target, data)
        except OSError as err:
            raise DeviceError(f"cannot save {name!r}: {err.strerror or err}") from err
        _LOGGER.info(
            "picture frame: %s %s (%d bytes) from client %s",
            "replaced" if replaced else "added",
            name,
            len(data),
            call.client_id,
        )
        async with self._lock:
            if self._settings.current is None:
                await self._step(+1)
            elif self._settings.current == name:
                await self._rescan()
                await self._display(name)  # the picture on screen was replaced
            else:
                await self._refresh_library()
        return {"name": name, "bytes": len(data), "width": width, "height": height}

    def _write_picture(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        # A sub-folder that is a symbolic link could point anywhere: write only inside.
        if not _inside(self._folder, target.parent):
            raise PermissionError(f"{target.parent} leads outside the pictures folder")
        atomic_write(target, data, mode=PICTURE_FILE_MODE)

    async def _handle_delete_picture(
        self, params: dict[str, Any], call: CallContext
    ) -> dict[str, Any]:
        name: str = params["name"]
        target = self._folder / name
        if not target.is_file() or not _inside(self._folder, target.parent):
            raise Refused(f"there is no picture named {name!r}")
        try:
            await asyncio.to_thread(target.unlink)
        except OSError as err:
            raise DeviceError(f"cannot delete {name!r}: {err.strerror or err}") from err
        _LOGGER.info("picture frame: deleted %s for client %s", name, call.client_id)
        async with self._lock:
            await self._refresh_library()
        return {"deleted": name}

    async def _handle_thumbnail(self, params: dict[str, Any], call: CallContext) -> BinaryResult:
        size = int(params.get("size", self._thumbnail_size))
        name = self._settings.current
        if name is None:
            raise Refused("no picture is showing")
        mtime = self._mtimes.get(name, 0)
        key = (name, mtime, size)
        async with self._decodes:
            # Looked up once the decode slot is ours: concurrent requests share one decode.
            if self._thumbnail_cache is not None and self._thumbnail_cache[0] == key:
                data, dimensions = self._thumbnail_cache[1], self._thumbnail_cache[2]
            else:
                try:
                    source = self._thumbnail_source
                    if source is None or source[0] != (name, mtime):
                        # One decode per picture, whatever sizes are asked for.
                        self._thumbnail_source = None
                        image = await self._decode(
                            load_thumbnail_source, self._folder / name, self._budget
                        )
                        source = self._thumbnail_source = ((name, mtime), image)
                    data, dimensions = await self._decode(make_thumbnail, source[1], size)
                except Exception as err:
                    raise DeviceError(f"cannot read {name!r}: {err}") from err
                self._thumbnail_cache = (key, data, dimensions)
        meta = {"name": name, "width": dimensions[0], "height": dimensions[1]}
        return BinaryResult(data, "image/jpeg", meta)
