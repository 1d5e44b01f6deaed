"""Screen power and backlight brightness, by whatever means this Pi offers.

Probed in order of reliability: the DSI panel's backlight (``bl_power``); under a Wayland
compositor, ``wlopm`` or ``wlr-randr`` (the compositor owns the screen there, so sysfs tricks would
fight it); the DRM connector's ``status`` file, which can force an HDMI output off. ``vcgencmd
display_power`` is not used: it does nothing under the KMS driver that Bookworm uses. With none of
these the method is ``"unsupported"`` and the frame only blanks its picture.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pi_secure_ws_protocol.devices.frame import DisplayMethod

from .base import DeviceError
from .commands import run_command

_LOGGER = logging.getLogger(__name__)

# Values of the fbdev blanking levels the backlight class accepts in bl_power.
_FB_BLANK_UNBLANK: Final = "0"
_FB_BLANK_POWERDOWN: Final = "4"


def _writable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.W_OK)


async def _write(path: Path, text: str) -> None:
    def write() -> None:
        path.write_text(text)

    try:
        # A DSI panel's driver may talk I2C on write: keep it off the event loop.
        await asyncio.to_thread(write)
    except OSError as err:
        raise DeviceError(f"cannot write {path}: {err.strerror or err}") from err


class DisplayPower(ABC):
    """Turns the screen on and off; ``method`` names how, for the state and the logs."""

    method: DisplayMethod

    @abstractmethod
    async def set_power(self, on: bool) -> None:
        """Switch the screen; DeviceError when the means exists but failed."""


class NoDisplayPower(DisplayPower):
    method = DisplayMethod.UNSUPPORTED

    async def set_power(self, on: bool) -> None:
        return None


class BacklightPower(DisplayPower):
    method = DisplayMethod.BACKLIGHT

    def __init__(self, bl_power: Path) -> None:
        self.path = bl_power

    async def set_power(self, on: bool) -> None:
        await _write(self.path, _FB_BLANK_UNBLANK if on else _FB_BLANK_POWERDOWN)


class DrmConnectorPower(DisplayPower):
    """Forces the connector off; ``detect`` hands it back to hot-plug detection."""

    method = DisplayMethod.DRM

    def __init__(self, status_files: list[Path]) -> None:
        self.paths = status_files

    async def set_power(self, on: bool) -> None:
        for path in self.paths:
            await _write(path, "detect" if on else "off")


class WlopmPower(DisplayPower):
    method = DisplayMethod.WLOPM

    def __init__(self, executable: str) -> None:
        self.executable = executable

    async def set_power(self, on: bool) -> None:
        await run_command([self.executable, "--on" if on else "--off", "*"])


class WlrRandrPower(DisplayPower):
    method = DisplayMethod.WLR_RANDR

    def __init__(self, executable: str) -> None:
        self.executable = executable

    async def set_power(self, on: bool) -> None:
        listing = await run_command([self.executable])
        # Output names start a line; their properties are indented beneath.
        outputs = [
            line.split()[0] for line in listing.splitlines() if line and not line[0].isspace()
        ]
        if not outputs:
            raise DeviceError("wlr-randr lists no outputs")
        for output in outputs:
            await run_command([self.executable, "--output", output, "--on" if on else "--off"])


class Backlight:
    """A backlight whose brightness this process may set, scaled from 0-255 to its own range."""

    def __init__(self, directory: Path, max_brightness: int) -> None:
        self.directory = directory
        self.max_brightness = max_brightness

    async def set_level(self, brightness: int) -> None:
        """``brightness`` 0-255; a non-zero level never rounds down to a dark screen."""
        level = round(brightness * self.max_brightness / 255)
        if brightness > 0:
            level = max(level, 1)
        await _write(self.directory / "brightness", str(level))


def _backlight_dirs(root: Path) -> list[Path]:
    return sorted((root / "sys/class/backlight").glob("*"))


def probe_backlight(root: Path = Path("/")) -> Backlight | None:
    for directory in _backlight_dirs(root):
        try:
            maximum = int((directory / "max_brightness").read_text().strip())
        except (OSError, ValueError):
            continue
        if maximum > 0 and _writable(directory / "brightness"):
            return Backlight(directory, maximum)
    return None


def probe_display_power(
    root: Path = Path("/"), env: Mapping[str, str] | None = None
) -> DisplayPower:
    """The best way to switch this Pi's screen, or NoDisplayPower."""
    environment = os.environ if env is None else env
    for directory in _backlight_dirs(root):
        if _writable(directory / "bl_power"):
            return BacklightPower(directory / "bl_power")
    if environment.get("WAYLAND_DISPLAY"):
        search_path = environment.get("PATH")
        for name, power_class in (("wlopm", WlopmPower), ("wlr-randr", WlrRandrPower)):
            executable = shutil.which(name, path=search_path)
            if executable is not None:
                return power_class(executable)
    connected: list[Path] = []
    hdmi: list[Path] = []
    for status in sorted((root / "sys/class/drm").glob("card*-*/status")):
        if not _writable(status):
            continue
        try:
            if status.read_text().strip() == "connected":
                connected.append(status)
        except OSError:
            continue
        if "-HDMI-" in status.parent.name:
            hdmi.append(status)
    # An HDMI output this agent forced off before a restart reads "disconnected": still ours.
    if connected or hdmi:
        return DrmConnectorPower(connected or hdmi)
    _LOGGER.info("no way to switch the display off was found; the frame will only blank it")
    return NoDisplayPower()
