"""The always-present ``system`` device: the Pi's health, and restart/reboot for admins.

Every reading comes from a tiny file under ``/proc`` or ``/sys`` (cheap enough to read on the event
loop) except the firmware throttling flags, which may need ``vcgencmd``: that runs as an async
subprocess with a timeout. Paths hang off an injectable ``root`` so tests can build a fake tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from pi_secure_ws_protocol.const import Role

from .base import Action, CallContext, Device, DeviceContext, DeviceError, Refused

_LOGGER = logging.getLogger(__name__)

DEVICE_ID: Final = "system"
DEFAULT_REFRESH_INTERVAL: Final = 30.0
# Long enough for the answer to reach the caller before the agent goes away.
DEFAULT_ACTION_DELAY: Final = 0.5
SUBPROCESS_TIMEOUT: Final = 5.0

_FIRMWARE_THROTTLED: Final = "sys/devices/platform/soc/soc:firmware/get_throttled"

# Bits of the firmware's get_throttled word (Raspberry Pi documentation, "vcgencmd get_throttled").
_THROTTLE_FLAGS: Final = (
    ("under_voltage", 0),
    ("freq_capped", 1),
    ("throttled", 2),
    ("soft_temp_limit", 3),
)
_SINCE_BOOT_SHIFT: Final = 16

RebootCallback = Callable[[], Awaitable[None]]


def decode_throttled(value: int) -> dict[str, Any]:
    """Split the firmware's throttling word into flags that hold now and flags seen since boot."""
    return {
        "raw": f"0x{value:x}",
        "now": {name: bool(value >> bit & 1) for name, bit in _THROTTLE_FLAGS},
        "since_boot": {
            name: bool(value >> (bit + _SINCE_BOOT_SHIFT) & 1) for name, bit in _THROTTLE_FLAGS
        },
    }


def parse_throttled_text(text: str) -> int:
    """Accept ``throttled=0x50005`` (vcgencmd) or ``50005`` (sysfs prints hex without 0x)."""
    value = text.strip().rpartition("=")[2].strip()
    return int(value, 16)


async def _systemctl_reboot() -> None:
    await run_command(["systemctl", "reboot"])


async def run_command(argv: Sequence[str], time_limit: float = SUBPROCESS_TIMEOUT) -> str:
    """Run a short command without blocking the loop; its stdout, or DeviceError saying why not."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as err:
        raise DeviceError(f"cannot run {argv[0]}: {err.strerror or err}") from err
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), time_limit)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise DeviceError(f"{argv[0]} did not answer within {time_limit:g} s") from None
    if process.returncode != 0:
        detail = stderr.decode(errors="replace").strip() or f"exit status {process.returncode}"
        raise DeviceError(f"{' '.join(argv)} failed: {detail}")
    return stdout.decode(errors="replace")


class SystemDevice(Device):
    """Hostname, model, uptime, temperature, load, disk, memory, Wi-Fi and throttling."""

    kind = "system"

    def __init__(
        self,
        state_dir: Path,
        *,
        name: str = "System",
        root: Path = Path("/"),
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
        on_restart: Callable[[], None] | None = None,
        on_reboot: RebootCallback | None = _systemctl_reboot,
        vcgencmd: str | None = None,
        action_delay: float = DEFAULT_ACTION_DELAY,
        gpio: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(DEVICE_ID, name)
        self._gpio = dict(gpio or {})
        self._state_dir = state_dir
        self._root = root
        self._refresh_interval = refresh_interval
        self._on_restart = on_restart
        self._on_reboot = on_reboot
        self._action_delay = action_delay
        self._firmware_throttled = root / _FIRMWARE_THROTTLED
        # vcgencmd is only a fallback when the firmware's sysfs file is missing (older kernels);
        # None looks it up on PATH, "" means do without.
        self._vcgencmd = shutil.which("vcgencmd") if vcgencmd is None else (vcgencmd or None)
        self._thermal_file = self._find_thermal_zone()
        self._state: dict[str, Any] = {}
        self._refresh_task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Handle] = set()
        self._actions = {
            "refresh": Action("refresh", self._handle_refresh, role=Role.VIEWER),
            "restart_agent": Action("restart_agent", self._handle_restart, role=Role.ADMIN),
            "reboot": Action("reboot", self._handle_reboot, role=Role.ADMIN),
        }
        self._state = self._read_files()
        self._state["throttled"] = self._read_throttled_file()
        self._capabilities = self._probe_capabilities()

    # Device interface

    def capabilities(self) -> dict[str, Any]:
        # Probed at each refresh, not at each login: every hello describes this device.
        return self._capabilities

    def _probe_capabilities(self) -> dict[str, Any]:
        sensors = ["hostname", "uptime", "load", "disk", "memory"]
        if (self._root / "proc/device-tree/model").is_file():
            sensors.append("model")
        if self._thermal_file is not None:
            sensors.append("cpu_temperature")
        if self._wifi() is not None:
            sensors.append("wifi")
        if self._firmware_throttled.is_file() or self._vcgencmd is not None:
            sensors.append("throttled")
        return {
            "sensors": sensors,
            "restart_agent": self._on_restart is not None,
            "reboot": self._on_reboot is not None,
            # Which pin factory and gpiochip drive the pins: shown in Home Assistant's diagnostics.
            "gpio": self._gpio,
        }

    def state(self) -> dict[str, Any]:
        return dict(self._state)

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    async def start(self) -> None:
        await self.refresh()
        self._refresh_task = asyncio.create_task(self._refresh_loop(), name="system-refresh")

    async def stop(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh_task
            self._refresh_task = None

    # Readings

    async def refresh(self) -> bool:
        """Read everything again; push only when something changed meaningfully."""
        new_state = self._read_files()
        new_state["throttled"] = await self._read_throttled()
        changed = _significant(new_state) != _significant(self._state)
        self._state = new_state
        self._capabilities = self._probe_capabilities()
        if changed:
            self.notify_state()
        return changed

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_interval)
            try:
                await self.refresh()
            except Exception:
                _LOGGER.exception("reading the system state failed")

    def _read_files(self) -> dict[str, Any]:
        return {
            "hostname": socket.gethostname(),
            "model": self._model(),
            "uptime": self._uptime(),
            "cpu_temperature": self._cpu_temperature(),
            "load": self._load(),
            "disk": self._disk(),
            "memory": self._memory(),
            "wifi": self._wifi(),
        }

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

    def _load(self) -> dict[str, float] | None:
        text = self._read_text("proc/loadavg")
        try:
            one, five, fifteen = (float(part) for part in (text or "").split()[:3])
        except ValueError:  # missing file, too few fields or not numbers
            return None
        return {"1m": one, "5m": five, "15m": fifteen}

    def _disk(self) -> dict[str, Any] | None:
        try:
            usage = shutil.disk_usage(self._state_dir)
        except OSError:
            return None
        return {
            "free_bytes": usage.free,
            "total_bytes": usage.total,
            "free_percent": round(100 * usage.free / usage.total, 1) if usage.total else None,
        }

    def _memory(self) -> dict[str, Any] | None:
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
        return {
            "total_bytes": total,
            "available_bytes": available,
            "used_percent": round(100 * (total - available) / total, 1),
        }

    def _wifi(self) -> dict[str, Any] | None:
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
            return {"interface": interface.strip(), "link_quality": link, "signal_dbm": level}
        return None

    def _read_throttled_file(self) -> dict[str, Any] | None:
        text = self._read_text(self._firmware_throttled)
        if text is None:
            return None
        try:
            return decode_throttled(parse_throttled_text(text))
        except ValueError:
            _LOGGER.warning("unexpected content in %s: %r", self._firmware_throttled, text[:40])
            return None

    async def _read_throttled(self) -> dict[str, Any] | None:
        if self._firmware_throttled.is_file() or self._vcgencmd is None:
            return self._read_throttled_file()
        try:
            text = await run_command([self._vcgencmd, "get_throttled"])
            return decode_throttled(parse_throttled_text(text))
        except (DeviceError, ValueError) as err:
            _LOGGER.warning("vcgencmd get_throttled: %s", err)
            return None

    # Actions

    async def _handle_refresh(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        await self.refresh()
        return self.state()

    async def _handle_restart(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        if self._on_restart is None:
            raise Refused("restarting the agent is not available here")
        _LOGGER.warning("agent restart requested by client %s from %s", call.client_id, call.source)
        callback = self._on_restart
        handle = asyncio.get_running_loop().call_later(self._action_delay, self._run_once, callback)
        self._pending.add(handle)
        return {"restarting": True}

    def _run_once(self, callback: Callable[[], None]) -> None:
        self._pending.clear()
        callback()

    async def _handle_reboot(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        if self._on_reboot is None:
            raise Refused("rebooting is not available here")
        _LOGGER.warning("reboot requested by client %s from %s", call.client_id, call.source)
        # systemctl only queues the reboot job, so the answer still reaches the caller.
        await self._on_reboot()
        return {"rebooting": True}


def _significant(state: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a push is worth: uptime always moves, and tiny wobbles of the others are noise."""

    def rounded(section: Any, key: str, step: float) -> float | None:
        if not isinstance(section, Mapping) or section.get(key) is None:
            return None
        return round(float(section[key]) / step)

    temperature = state.get("cpu_temperature")
    return (
        state.get("hostname"),
        state.get("model"),
        None if temperature is None else round(temperature),
        rounded(state.get("load"), "1m", 0.25),
        rounded(state.get("memory"), "used_percent", 1.0),
        rounded(state.get("disk"), "free_percent", 1.0),
        rounded(state.get("wifi"), "signal_dbm", 3.0),
        repr(state.get("throttled")),
    )


def create_system_device(
    ctx: DeviceContext,
    *,
    on_restart: Callable[[], None] | None = None,
    on_reboot: RebootCallback | None = None,
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
    root: Path = Path("/"),
) -> SystemDevice:
    """The ``system`` device every agent has; the app passes how to restart itself.

    Without ``on_reboot`` the device reboots with ``systemctl reboot`` on real hardware; with
    ``hardware = "mock"`` (a development box) it refuses, so a demo never reboots a workstation.
    """
    if on_reboot is None and not ctx.mock:
        on_reboot = _systemctl_reboot
    return SystemDevice(
        ctx.state_dir,
        root=root,
        refresh_interval=refresh_interval,
        on_restart=on_restart,
        on_reboot=on_reboot,
        gpio=ctx.gpio,
    )
