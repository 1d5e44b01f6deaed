"""What the system device reads: the Pi's health from tiny files under ``/proc`` and ``/sys``.

Every file is cheap enough to read on the event loop; only the firmware's throttling flags may need
``vcgencmd`` (older kernels without the sysfs file), which runs as an async subprocess with a time
limit. Paths hang off an injectable ``root`` so tests can build a fake tree. A reading that is
missing or malformed is None, never an error: one odd file must not hide the others.
"""

from __future__ import annotations

import logging
import shutil
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from pi_secure_ws_protocol.devices.system import (
    DiskUsage,
    LoadAverage,
    MemoryUsage,
    SystemSensor,
    SystemState,
    ThrottleFlags,
    Throttling,
    WifiLink,
)

from .base import DeviceError
from .commands import run_command

_LOGGER = logging.getLogger(__name__)

_FIRMWARE_THROTTLED: Final = "sys/devices/platform/soc/soc:firmware/get_throttled"

# Bits of the firmware's get_throttled word (Raspberry Pi documentation, "vcgencmd get_throttled").
_THROTTLE_FLAGS: Final = (
    ("under_voltage", 0),
    ("freq_capped", 1),
    ("throttled", 2),
    ("soft_temp_limit", 3),
)
_SINCE_BOOT_SHIFT: Final = 16


def decode_throttled(value: int) -> Throttling:
    """Split the firmware's throttling word into flags that hold now and flags seen since boot."""

    def flags(shift: int) -> ThrottleFlags:
        return ThrottleFlags(
            **{name: bool(value >> (bit + shift) & 1) for name, bit in _THROTTLE_FLAGS}
        )

    return Throttling(raw=f"0x{value:x}", now=flags(0), since_boot=flags(_SINCE_BOOT_SHIFT))


def parse_throttled_text(text: str) -> int:
    """Accept ``throttled=0x50005`` (vcgencmd) or ``50005`` (sysfs prints hex without 0x)."""
    value = text.strip().rpartition("=")[2].strip()
    return int(value, 16)


class SystemReadings:
    """Reads the Pi under ``root``; ``state_dir``'s file system is the disk that is reported."""

    def __init__(self, root: Path, state_dir: Path, vcgencmd: str | None) -> None:
        self._root = root
        self._state_dir = state_dir
        self._firmware_throttled = root / _FIRMWARE_THROTTLED
        # vcgencmd is only a fallback when the firmware's sysfs file is missing (older kernels);
        # None means do without.
        self._vcgencmd = vcgencmd
        self._thermal_file = self._find_thermal_zone()

    def sensors(self) -> tuple[SystemSensor, ...]:
        """The readings this Pi offers (probed again at each refresh)."""
        sensors = [
            SystemSensor.HOSTNAME,
            SystemSensor.UPTIME,
            SystemSensor.LOAD,
            SystemSensor.DISK,
            SystemSensor.MEMORY,
        ]
        if (self._root / "proc/device-tree/model").is_file():
            sensors.append(SystemSensor.MODEL)
        if self._thermal_file is not None:
            sensors.append(SystemSensor.CPU_TEMPERATURE)
        if self._wifi() is not None:
            sensors.append(SystemSensor.WIFI)
        if self._firmware_throttled.is_file() or self._vcgencmd is not None:
            sensors.append(SystemSensor.THROTTLED)
        return tuple(sensors)

    def read_files(self) -> SystemState:
        """Every reading but the throttling flags (None here: see ``read``)."""
        return SystemState(
            hostname=socket.gethostname(),
            model=self._model(),
            uptime=self._uptime(),
            cpu_temperature=self._cpu_temperature(),
            load=self._load(),
            disk=self._disk(),
            memory=self._memory(),
            wifi=self._wifi(),
            throttled=None,
        )

    def read_now(self) -> SystemState:
        """Every reading without a subprocess: the throttling flags from sysfs only."""
        return replace(self.read_files(), throttled=self.read_throttled_file())

    async def read(self) -> SystemState:
        """Every reading, the throttling flags from vcgencmd where sysfs lacks them."""
        state = self.read_files()
        return replace(state, throttled=await self.read_throttled())

    def _read_text(self, relative: str | Path) -> str | None:
        try:
            return (self._root / relative).read_text(errors="replace")
        except OSError:
            return None

    def _model(self) -> str | None:
        text = self._read_text("proc/device-tree/model")
        # The device tree stores a C string: drop its terminating NUL.
        return text.rstrip("\x00\n ") if text else None

    def _uptime(self) -> float | None:
        text = self._read_text("proc/uptime")
        try:
            return round(float(text.split()[0]), 1) if text else None
        except (ValueError, IndexError):
            return None

    def _find_thermal_zone(self) -> Path | None:
        zones = sorted((self._root / "sys/class/thermal").glob("thermal_zone*/temp"))
        for temp in zones:
            kind = self._read_text(temp.parent / "type")
            if kind is not None and "cpu" in kind.lower():
                return temp
        return zones[0] if zones else None

    def _cpu_temperature(self) -> float | None:
        if self._thermal_file is None:
            return None
        text = self._read_text(self._thermal_file)
        try:
            return round(int(text.strip()) / 1000, 1) if text else None
        except ValueError:
            return None

    def _load(self) -> LoadAverage | None:
        text = self._read_text("proc/loadavg")
        try:
            one, five, fifteen = (float(part) for part in (text or "").split()[:3])
        except ValueError:  # missing file, too few fields or not numbers
            return None
        return LoadAverage(one=one, five=five, fifteen=fifteen)

    def _disk(self) -> DiskUsage | None:
        try:
            usage = shutil.disk_usage(self._state_dir)
        except OSError:
            return None
        return DiskUsage(
            free_bytes=usage.free,
            total_bytes=usage.total,
            free_percent=round(100 * usage.free / usage.total, 1) if usage.total else None,
        )

    def _memory(self) -> MemoryUsage | None:
        text = self._read_text("proc/meminfo")
        if not text:
            return None
        fields: dict[str, int] = {}
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                fields[key.strip()] = int(parts[0]) * 1024  # meminfo counts kiB
        total = fields.get("MemTotal")
        available = fields.get("MemAvailable", fields.get("MemFree"))
        if not total or available is None:
            return None
        return MemoryUsage(
            total_bytes=total,
            available_bytes=available,
            used_percent=round(100 * (total - available) / total, 1),
        )

    def _wifi(self) -> WifiLink | None:
        text = self._read_text("proc/net/wireless")
        if not text:
            return None
        # Two header lines, then "wlan0: 0000   70.  -40.  -256 ...": status, link, level, noise.
        for line in text.splitlines()[2:]:
            interface, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) < 3:
                continue
            try:
                link = float(parts[1].rstrip("."))
                level = float(parts[2].rstrip("."))
            except ValueError:
                continue
            return WifiLink(interface=interface.strip(), link_quality=link, signal_dbm=level)
        return None

    def read_throttled_file(self) -> Throttling | None:
        text = self._read_text(self._firmware_throttled)
        if text is None:
            return None
        try:
            return decode_throttled(parse_throttled_text(text))
        except ValueError:
            _LOGGER.warning("unexpected content in %s: %r", self._firmware_throttled, text[:40])
            return None

    async def read_throttled(self) -> Throttling | None:
        if self._firmware_throttled.is_file() or self._vcgencmd is None:
            return self.read_throttled_file()
        try:
            text = await run_command([self._vcgencmd, "get_throttled"])
            return decode_throttled(parse_throttled_text(text))
        except (DeviceError, ValueError) as err:
            _LOGGER.warning("vcgencmd get_throttled: %s", err)
            return None


def significant(state: SystemState) -> tuple[Any, ...]:
    """What a push is worth: uptime always moves, and tiny wobbles of the others are noise."""

    def rounded(value: float | None, step: float) -> float | None:
        return None if value is None else round(value / step)

    temperature = state.cpu_temperature
    return (
        state.hostname,
        state.model,
        None if temperature is None else round(temperature),
        rounded(None if state.load is None else state.load.one, 0.25),
        rounded(None if state.memory is None else state.memory.used_percent, 1.0),
        rounded(None if state.disk is None else state.disk.free_percent, 1.0),
        rounded(None if state.wifi is None else state.wifi.signal_dbm, 3.0),
        state.throttled,
    )
