"""The always-present ``system`` device: the Pi's health, and restart/reboot for admins.

The readings themselves (``/proc``, ``/sys``, ``vcgencmd``) are :mod:`system_readings`; this device
refreshes them on a timer, pushes only changes that matter, and runs the admin actions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final

from pi_secure_ws_protocol.const import Role
from pi_secure_ws_protocol.devices.kinds import DeviceKind
from pi_secure_ws_protocol.devices.system import (
    DEVICE_ID,
    SystemAction,
    SystemCapabilities,
    SystemState,
)

from .base import Action, CallContext, Device, DeviceContext, Refused
from .commands import run_command
from .system_readings import SystemReadings, significant

_LOGGER = logging.getLogger(__name__)

DEFAULT_REFRESH_INTERVAL: Final = 30.0
# Long enough for the answer to reach the caller before the agent goes away.
DEFAULT_ACTION_DELAY: Final = 0.5

RebootCallback = Callable[[], Awaitable[None]]


async def _systemctl_reboot() -> None:
    await run_command(["systemctl", "reboot"])


class SystemDevice(Device):
    """Hostname, model, uptime, temperature, load, disk, memory, Wi-Fi and throttling."""

    kind = DeviceKind.SYSTEM

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
        self._refresh_interval = refresh_interval
        self._on_restart = on_restart
        self._on_reboot = on_reboot
        self._action_delay = action_delay
        # vcgencmd: None looks it up on PATH, "" means do without.
        found = shutil.which("vcgencmd") if vcgencmd is None else (vcgencmd or None)
        self._readings = SystemReadings(root, state_dir, found)
        self._refresh_task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Handle] = set()
        self._actions = {
            action.name: action
            for action in (
                Action(SystemAction.REFRESH, self._handle_refresh, role=Role.VIEWER),
                Action(SystemAction.RESTART_AGENT, self._handle_restart, role=Role.ADMIN),
                Action(SystemAction.REBOOT, self._handle_reboot, role=Role.ADMIN),
            )
        }
        self._state: SystemState = self._readings.read_now()
        self._capabilities = self._probe_capabilities()

    # Device interface

    def capabilities(self) -> dict[str, Any]:
        # Probed at each refresh, not at each login: every hello describes this device.
        return self._capabilities

    def _probe_capabilities(self) -> dict[str, Any]:
        return SystemCapabilities(
            sensors=self._readings.sensors(),
            restart_agent=self._on_restart is not None,
            reboot=self._on_reboot is not None,
            # Which pin factory and gpiochip drive the pins: shown in Home Assistant's diagnostics.
            gpio=self._gpio,
        ).to_wire()

    def state(self) -> dict[str, Any]:
        return self._state.to_wire()

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
        new_state = await self._readings.read()
        changed = significant(new_state) != significant(self._state)
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
