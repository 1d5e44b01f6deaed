"""The picture frame's screen: a pygame-ce render loop on its own thread.

pygame's display calls block (and must all happen on the thread that opened the display), so the
event loop only posts commands here: show a picture, dim, blank, take a screenshot, stop. Pictures
arrive decoded by Pillow; this thread scales them to fit with black bars, turns the pixels into a
surface and crossfades from the previous one.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from PIL import Image

_LOGGER = logging.getLogger(__name__)

FADE_STEPS_PER_SECOND: Final = 30
# How often the idle loop lets SDL handle window-system events (a compositor wants an answer).
IDLE_POLL_SECONDS: Final = 0.25
_HEADLESS_DRIVERS: Final = ("dummy", "offscreen")

Size = tuple[int, int]


def fit_picture(image: Image.Image, screen: Size) -> Image.Image:
    """Scale ``image`` to fit ``screen`` keeping its aspect ratio, centred on black bars."""
    width, height = image.size
    scale = min(screen[0] / width, screen[1] / height)
    fitted = (max(1, round(width * scale)), max(1, round(height * scale)))
    canvas = Image.new("RGB", screen)
    scaled = image.convert("RGB").resize(fitted, Image.Resampling.LANCZOS)
    canvas.paste(scaled, ((screen[0] - fitted[0]) // 2, (screen[1] - fitted[1]) // 2))
    return canvas


@dataclass
class _Show:
    image: Image.Image


@dataclass
class _Dim:
    brightness: int


@dataclass
class _Blank:
    blank: bool


@dataclass
class _Screenshot:
    result: Future[Image.Image]


class _Stop:
    pass


_Command = _Show | _Dim | _Blank | _Screenshot | _Stop


class FrameRenderer:
    """Owns the display; every public method is safe to call from any thread."""

    def __init__(self, width: int, height: int, crossfade: float) -> None:
        self._fallback_size = (width, height)
        self._crossfade = crossfade
        self._commands: queue.Queue[_Command] = queue.Queue()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.size: Size = (width, height)
        self.error: str | None = None
        self.shown = 0  # pictures put on screen, for diagnostics and tests

    # Called from the event loop (via asyncio.to_thread for the blocking ones)

    def start(self, timeout: float = 10.0) -> None:
        """Open the display and wait until it is ready (or failed: see ``error``)."""
        self._thread = threading.Thread(target=self._run, name="frame-renderer", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.error = f"the display did not open within {timeout:g} s"

    def show(self, image: Image.Image) -> None:
        self._commands.put(_Show(image))

    def set_brightness(self, brightness: int) -> None:
        """Software dimming, 0 (black) to 255 (as decoded): for screens without a backlight."""
        self._commands.put(_Dim(max(0, min(255, brightness))))

    def set_blank(self, blank: bool) -> None:
        self._commands.put(_Blank(blank))

    def screenshot(self) -> Future[Image.Image]:
        """What the screen shows now, as a Pillow image."""
        result: Future[Image.Image] = Future()
        if self._thread is None or not self._thread.is_alive():
            result.set_exception(RuntimeError(self.error or "the display is not running"))
        else:
            self._commands.put(_Screenshot(result))
        return result

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._commands.put(_Stop())
        self._thread.join(timeout)
        self._thread = None

    # The render thread

    def _run(self) -> None:
        try:
            os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
            # SDL would otherwise take over SIGINT and SIGTERM, and the agent must see them (it
            # closes every sprinkler valve before it exits).
            os.environ["SDL_NO_SIGNAL_HANDLERS"] = "1"
            if "SDL_VIDEODRIVER" not in os.environ and not _has_screen():
                # No screen to draw on: SDL's "offscreen" fallback would load Mesa's software
                # OpenGL (about 90 MB resident) to render what nobody sees.
                os.environ["SDL_VIDEODRIVER"] = "dummy"
                _LOGGER.info("picture frame: no screen found, rendering off-screen only")
            import pygame

            pygame.display.init()
            painter = _Painter(pygame, self._fallback_size, self._crossfade)
        except Exception as err:  # no display, no permission, pygame-ce missing...
            self.error = f"cannot open the display: {err}"
            _LOGGER.error("picture frame: %s", self.error)
            self._ready.set()
            return
        self.size = painter.size
        self._ready.set()
        try:
            self._loop(painter)
        except Exception as err:
            self.error = f"the display failed: {err}"
            _LOGGER.exception("picture frame renderer stopped")
        finally:
            pygame.quit()
            self._fail_pending_screenshots()

    def _fail_pending_screenshots(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if isinstance(command, _Screenshot):
                command.result.set_exception(RuntimeError("the display stopped"))

    def _loop(self, painter: _Painter) -> None:
        while True:
            try:
                first = self._commands.get(timeout=IDLE_POLL_SECONDS)
            except queue.Empty:
                painter.pump()
                continue
            # Take everything queued: only the newest picture is worth drawing.
            commands = [first]
            while True:
                try:
                    commands.append(self._commands.get_nowait())
                except queue.Empty:
                    break
            newest: Image.Image | None = None
            redraw = False
            for command in commands:
                if isinstance(command, _Stop):
                    for pending in commands:
                        if isinstance(pending, _Screenshot):
                            pending.result.set_exception(RuntimeError("the display stopped"))
                    return
                if isinstance(command, _Show):
                    newest = command.image
                elif isinstance(command, _Dim):
                    redraw = redraw or command.brightness != painter.brightness
                    painter.brightness = command.brightness
                elif isinstance(command, _Blank):
                    redraw = redraw or command.blank != painter.blank
                    painter.blank = command.blank
            if newest is not None:
                painter.change_picture(newest)
                self.shown += 1
            elif redraw:
                painter.draw()
            for command in commands:
                if isinstance(command, _Screenshot):
                    command.result.set_result(painter.screenshot())


class _Painter:
    """The render thread's drawing state: lives and dies on that thread."""

    def __init__(self, pygame: Any, fallback_size: Size, crossfade: float) -> None:
        self._pygame = pygame
        self._crossfade = crossfade
        driver = pygame.display.get_driver()
        size = fallback_size
        flags = 0
        if driver not in _HEADLESS_DRIVERS:
            desktop = pygame.display.get_desktop_sizes()
            if desktop and desktop[0][0] > 0 and desktop[0][1] > 0:
                size = desktop[0]
            flags = pygame.FULLSCREEN
        self._screen = pygame.display.set_mode(size, flags)
        pygame.display.set_caption("Picture frame")
        pygame.mouse.set_visible(False)
        self.size: Size = self._screen.get_size()
        _LOGGER.info("picture frame display: %s driver, %dx%d", driver, *self.size)
        self.brightness = 255
        self.blank = False
        self._picture = pygame.Surface(self.size)
        self._picture.fill((0, 0, 0))
        self.draw()

    def pump(self) -> None:
        self._pygame.event.pump()

    def change_picture(self, image: Image.Image) -> None:
        fitted = fit_picture(image, self.size)
        incoming = self._pygame.image.frombytes(fitted.tobytes(), fitted.size, "RGB").convert()
        if not self.blank:
            steps = int(self._crossfade * FADE_STEPS_PER_SECOND)
            for step in range(1, steps):
                started = time.monotonic()
                self.draw(incoming, round(255 * step / steps))
                self.pump()
                time.sleep(max(0.0, 1 / FADE_STEPS_PER_SECOND - (time.monotonic() - started)))
        self._picture = incoming
        self.draw()

    def draw(self, incoming: Any = None, incoming_alpha: int = 255) -> None:
        screen = self._screen
        if self.blank:
            screen.fill((0, 0, 0))
        else:
            screen.blit(self._picture, (0, 0))
            if incoming is not None:
                incoming.set_alpha(incoming_alpha)
                screen.blit(incoming, (0, 0))
                incoming.set_alpha(None)
            if self.brightness < 255:
                shade = self._pygame.Surface(self.size)
                shade.fill((0, 0, 0))
                shade.set_alpha(255 - self.brightness)
                screen.blit(shade, (0, 0))
        self._pygame.display.flip()

    def screenshot(self) -> Image.Image:
        raw = self._pygame.image.tobytes(self._screen, "RGB")
        return Image.frombytes("RGB", self.size, raw)


def _has_screen() -> bool:
    """A desktop session, or a DRM/KMS device SDL's kmsdrm driver can draw on."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return True
    return any(Path("/dev/dri").glob("card*"))
