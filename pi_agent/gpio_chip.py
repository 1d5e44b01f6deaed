"""Which gpiochip drives the 40-pin header, found by its label, and the pin factory built on it.

gpiozero's lgpio factory picks the chip by number: 4 on a Pi 5 when ``/dev/gpiochip4`` exists,
else 0 (gpiozero 2.0.1, ``gpiozero/pins/lgpio.py``). Raspberry Pi's kernels renumbered the Pi 5's
RP1 header from gpiochip4 to gpiochip0 (6.6.y, 2024) and Raspberry Pi OS adds a ``gpiochip4``
symlink for old programs; a kernel without that symlink, or any kernel that numbers the chips
differently, leaves gpiozero on the wrong chip. The label the driver gives the chip does not
change, so the agent looks for it and hands gpiozero that chip's number.

lgpio also makes a FIFO (``.lgd-nfyN``) in the working directory when it is imported and fails to
import where that directory is not writable: the service starts in ``/``, read-only under
``ProtectSystem=strict``. The agent imports it from its state directory.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

_LOGGER = logging.getLogger(__name__)

# Labels of the header's GPIO controller, by SoC (Raspberry Pi's and mainline kernels alike).
HEADER_LABELS: Final = {
    "pinctrl-rp1": "Raspberry Pi 5 (RP1)",
    "pinctrl-bcm2711": "Raspberry Pi 4, 400, CM4 (BCM2711)",
    "pinctrl-bcm2835": "Raspberry Pi 1-3, Zero, Zero 2 W (BCM2835-7)",
}
_CHIP_NAME: Final = re.compile(r"gpiochip(\d+)")


@dataclass(frozen=True)
class GpioChip:
    """One GPIO character device and what sysfs says about it."""

    number: int
    label: str
    lines: int | None

    @property
    def device(self) -> str:
        return f"/dev/gpiochip{self.number}"


def list_chips(root: Path = Path("/")) -> list[GpioChip]:
    """Every gpiochip whose label sysfs gives, by number.

    Two sysfs layouts name the label: ``/sys/class/gpio/chipN`` (newer kernels, numbered like the
    character device) and the legacy ``/sys/class/gpio/gpiochipBASE``, numbered by the first
    line's global number. A legacy entry belongs to the character device beside it under the same
    parent device (``device/gpiochipN``), or to the one it sits in.
    """
    class_dir = root / "sys/class/gpio"
    chips: dict[int, GpioChip] = {}
    try:
        entries = sorted(class_dir.iterdir())
    except OSError:
        return []
    for entry in entries:
        label = _read(entry / "label")
        if label is None:
            continue
        number = _chardev_number(entry, root)
        if number is None or number in chips:
            continue
        lines = _read(entry / "ngpio")
        chips[number] = GpioChip(number, label, int(lines) if lines and lines.isdigit() else None)
    return [chips[number] for number in sorted(chips)]


def find_header_chip(root: Path = Path("/")) -> GpioChip | None:
    """The chip of the 40-pin header, if sysfs names one and its device node exists."""
    for chip in list_chips(root):
        if chip.label in HEADER_LABELS and (root / chip.device.lstrip("/")).exists():
            return chip
    return None


def _chardev_number(entry: Path, root: Path) -> int | None:
    if entry.name.startswith("chip") and entry.name[4:].isdigit():
        return int(entry.name[4:])
    resolved = entry.resolve()
    # Where the legacy entry hangs below the gpio device itself: .../gpiochipN/gpio/gpiochipBASE.
    for part in reversed(resolved.parent.parts):
        match = _CHIP_NAME.fullmatch(part)
        if match:
            return int(match.group(1))
    # The usual layout: the entry and gpiochipN are both children of the controller's device.
    try:
        siblings = [p.name for p in (entry / "device").resolve().iterdir()]
    except OSError:
        return None
    numbers = [int(m.group(1)) for n in siblings if (m := _CHIP_NAME.fullmatch(n))]
    # A controller with several chips (banks) cannot be told apart this way; the header's has one.
    return numbers[0] if len(numbers) == 1 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


@dataclass
class PinFactoryChoice:
    """The gpiozero pin factory the agent uses (None: gpiozero picks its default) and why."""

    factory: Any
    details: dict[str, Any]


def mock_pin_factory() -> PinFactoryChoice:
    """gpiozero's MockFactory (mirrored to ``$PI_AGENT_PIN_LOG`` when set, see ``pins``)."""
    from .pins import mock_pin_factory as mirrored_mock_factory

    return PinFactoryChoice(mirrored_mock_factory(), {"factory": "MockFactory", "chip": None})


def gpio_pin_factory(work_dir: Path, root: Path = Path("/")) -> PinFactoryChoice:
    """lgpio on the header's chip found by label; gpiozero's own choice when that is not possible.

    ``GPIOZERO_PIN_FACTORY`` in the environment wins, as gpiozero documents. Failures here only
    log: a frame-only Pi needs no GPIO, and a GPIO device reports the error when it is built.
    """
    chip = find_header_chip(root)
    details: dict[str, Any] = {
        "factory": None,
        "chip": chip.device if chip else None,
        "chip_label": chip.label if chip else None,
        "found_by": "label" if chip else None,
    }
    if os.environ.get("GPIOZERO_PIN_FACTORY"):
        details["factory"] = os.environ["GPIOZERO_PIN_FACTORY"]
        details["found_by"] = "GPIOZERO_PIN_FACTORY"
        return PinFactoryChoice(None, details)
    try:
        with _working_directory(work_dir):
            # Imported here, where it may make its FIFO; gpiozero's module imports it too.
            importlib.import_module("lgpio")
            from gpiozero.pins.lgpio import LGPIOFactory
    except Exception as err:  # lgpio raises FileNotFoundError, ImportError, ...
        details["error"] = f"lgpio unavailable: {err}"
        _LOGGER.warning("GPIO: lgpio unavailable (%s); gpiozero picks another pin factory", err)
        return PinFactoryChoice(None, details)
    try:
        factory = LGPIOFactory(chip=chip.number) if chip else LGPIOFactory()
    except Exception as err:
        details["error"] = f"lgpio cannot open the GPIO chip: {err}"
        _LOGGER.warning("GPIO: lgpio cannot open the GPIO chip: %s", err)
        return PinFactoryChoice(None, details)
    details["factory"] = "LGPIOFactory"
    if chip is None:
        details["chip"] = f"/dev/gpiochip{factory.chip}"
        details["found_by"] = "gpiozero default (no header chip label in /sys/class/gpio)"
    _LOGGER.info("GPIO: lgpio on %s (%s)", details["chip"], details["chip_label"] or "no label")
    return PinFactoryChoice(factory, details)


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    # lgpio's C side writes its FIFO under $LG_WD, its Python side opens it relative to the
    # working directory: both must be the same writable directory.
    wanted = Path(os.environ.get("LG_WD") or path)
    os.environ["LG_WD"] = str(wanted)
    previous = Path.cwd()
    os.chdir(wanted)
    try:
        yield
    finally:
        os.chdir(previous)
