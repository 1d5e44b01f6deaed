"""Decoding pictures within a budget: for the screen, for thumbnails, and to vet an upload.

A 250 KB PNG can hold 64 Mpx, and each decoded megapixel costs 3-4 MB: every picture is measured
from its header and refused before decoding when it is over the budget, and each decode holds its
bytes against the agent's memory budget while it runs. Decodes run on their own worker threads, at
a lower priority than logins and commands, a bounded number at once (:class:`PictureDecoder`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from PIL import Image, ImageOps

from pi_agent.memory_budget import MemoryBudget

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

_FORMAT_SUFFIXES: Final = {"JPEG": (".jpg", ".jpeg"), "PNG": (".png",)}
MIB: Final = 1024 * 1024
# Decode budgets (the [frame] section may lower or raise them). Pictures over them are refused
# before decoding.
MAX_PICTURE_PIXELS: Final = 16_000_000
MAX_DECODED_BYTES: Final = 96 * 1024 * 1024
THUMBNAIL_SOURCE_SIDE: Final = 2048  # the largest thumbnail; every size is made from one copy
MAX_DECODES: Final = 1  # decodes at once, per frame device: each holds a whole decoded picture
THUMBNAIL_QUALITY: Final = 85
DECODE_NICENESS: Final = 10  # added to a decode thread's nice value

Size = tuple[int, int]


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


def load_picture(path: Path, target: Size, budget: DecodeBudget | None = None) -> Image.Image:
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


def make_thumbnail(source: Image.Image, size: int) -> tuple[bytes, Size]:
    image = source.copy()
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue(), image.size


def check_upload(data: bytes, name: str, budget: DecodeBudget | None = None) -> Size:
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


class PictureDecoder:
    """Runs decodes on the frame's own threads, at most ``budget.max_decodes`` at a time.

    Each decode holds a whole picture: a viewer's eight thumbnails at once must not be eight. Its
    own threads, not asyncio's pool: memory a decode frees stays with the thread's malloc arena,
    and any pool thread decoding would keep a picture's worth of memory each.
    """

    def __init__(self, budget: DecodeBudget | None = None) -> None:
        self.budget = budget or DecodeBudget()
        self._slots = asyncio.Semaphore(self.budget.max_decodes)
        self._executor: ThreadPoolExecutor | None = None
        # The last thumbnail made, by (name, mtime, size), and the one decoded copy it came from.
        self._thumbnail: tuple[tuple[str, int, int], bytes, Size] | None = None
        self._thumbnail_source: tuple[tuple[str, int], Image.Image] | None = None

    async def run(self, function: Callable[..., _T], *args: Any) -> _T:
        """``function(*args)`` on a decode thread; callers hold a decode slot around it."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.budget.max_decodes,
                thread_name_prefix="frame-decode",
                initializer=_lower_priority,
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def load(self, path: Path, target: Size) -> Image.Image:
        """The picture at ``path`` upright, ready to fit a ``target``-sized screen."""
        async with self._slots:
            return await self.run(load_picture, path, target, self.budget)

    async def check_upload(self, data: bytes, name: str) -> Size:
        """The uploaded picture's size; ValueError says why it is not acceptable."""
        async with self._slots:
            return await self.run(check_upload, data, name, self.budget)

    async def thumbnail(
        self, path: Path, picture: tuple[str, int], size: int
    ) -> tuple[bytes, Size]:
        """A JPEG of at most ``size`` pixels a side of ``path``, known as (name, mtime)."""
        key = (*picture, size)
        async with self._slots:
            # Looked up once the decode slot is ours: concurrent requests share one decode.
            if self._thumbnail is not None and self._thumbnail[0] == key:
                return self._thumbnail[1], self._thumbnail[2]
            source = self._thumbnail_source
            if source is None or source[0] != picture:
                # One decode per picture, whatever sizes are asked for.
                self._thumbnail_source = None
                image = await self.run(load_thumbnail_source, path, self.budget)
                source = self._thumbnail_source = (picture, image)
            data, dimensions = await self.run(make_thumbnail, source[1], size)
            self._thumbnail = (key, data, dimensions)
            return data, dimensions

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
