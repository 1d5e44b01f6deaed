"""The system device against a fake /proc and /sys tree, and its admin-only actions."""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path
from typing import Any

import pytest
from pi_secure_ws_protocol.const import Role
from pi_secure_ws_testing.devices import ADMIN, call

from pi_agent.devices.base import DeviceContext, DeviceError, Refused
from pi_agent.devices.commands import run_command
from pi_agent.devices.system import SystemDevice, create_system_device
from pi_agent.devices.system_readings import decode_throttled

MEMINFO = """MemTotal:        1000000 kB
MemFree:          100000 kB
MemAvailable:     250000 kB
Buffers:           10000 kB
"""
WIRELESS = """Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE
 face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
 wlan0: 0000   58.  -52.  -256        0      0      0      0      0        0
"""


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def pi_tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    write(root, "proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.4\x00")
    write(root, "proc/uptime", "12345.67 40000.00\n")
    write(root, "proc/loadavg", "0.52 0.34 0.20 1/234 5678\n")
    write(root, "proc/meminfo", MEMINFO)
    write(root, "proc/net/wireless", WIRELESS)
    write(root, "sys/class/thermal/thermal_zone0/type", "cpu-thermal\n")
    write(root, "sys/class/thermal/thermal_zone0/temp", "48312\n")
    write(root, "sys/devices/platform/soc/soc:firmware/get_throttled", "50005\n")
    return root


def make_device(tmp_path: Path, root: Path, **kwargs: Any) -> SystemDevice:
    return SystemDevice(tmp_path, root=root, vcgencmd=kwargs.pop("vcgencmd", ""), **kwargs)


def test_decode_throttled_bits() -> None:
    decoded = decode_throttled(0x50005).to_wire()
    assert decoded["raw"] == "0x50005"
    assert decoded["now"] == {
        "under_voltage": True,
        "freq_capped": False,
        "throttled": True,
        "soft_temp_limit": False,
    }
    assert decoded["since_boot"] == {
        "under_voltage": True,
        "freq_capped": False,
        "throttled": True,
        "soft_temp_limit": False,
    }
    capped = decode_throttled(0xA000A).to_wire()
    assert capped["now"]["freq_capped"]
    assert capped["now"]["soft_temp_limit"]
    assert capped["since_boot"]["freq_capped"]
    assert not capped["since_boot"]["under_voltage"]


async def test_reads_a_pi_tree(tmp_path: Path, pi_tree: Path) -> None:
    device = make_device(tmp_path, pi_tree)
    state = await call(device, "refresh", who=ADMIN)
    assert state["model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert state["uptime"] == 12345.7
    assert state["cpu_temperature"] == 48.3
    assert state["load"] == {"1m": 0.52, "5m": 0.34, "15m": 0.20}
    assert state["memory"] == {
        "total_bytes": 1000000 * 1024,
        "available_bytes": 250000 * 1024,
        "used_percent": 75.0,
    }
    assert state["wifi"] == {"interface": "wlan0", "link_quality": 58.0, "signal_dbm": -52.0}
    assert state["throttled"]["now"]["under_voltage"] is True
    assert state["throttled"]["since_boot"]["throttled"] is True
    assert state["disk"]["free_bytes"] > 0
    assert state["hostname"]
    assert set(device.capabilities()["sensors"]) == {
        "hostname",
        "uptime",
        "load",
        "disk",
        "memory",
        "model",
        "cpu_temperature",
        "wifi",
        "throttled",
    }


async def test_missing_sensors_are_null_and_not_advertised(tmp_path: Path) -> None:
    root = tmp_path / "bare"
    write(
        root, "proc/net/wireless", WIRELESS.split(" wlan0", maxsplit=1)[0]
    )  # headers, no interface
    device = make_device(tmp_path, root)
    state = await call(device, "refresh", who=ADMIN)
    for key in ("model", "uptime", "cpu_temperature", "load", "memory", "wifi", "throttled"):
        assert state[key] is None, key
    assert device.capabilities()["sensors"] == ["hostname", "uptime", "load", "disk", "memory"]


async def test_garbage_in_files_gives_null_not_a_crash(tmp_path: Path, pi_tree: Path) -> None:
    write(pi_tree, "proc/loadavg", "nonsense\n")
    write(pi_tree, "sys/class/thermal/thermal_zone0/temp", "hot\n")
    write(pi_tree, "sys/devices/platform/soc/soc:firmware/get_throttled", "zz\n")
    state = await call(make_device(tmp_path, pi_tree), "refresh", who=ADMIN)
    assert state["load"] is None
    assert state["cpu_temperature"] is None
    assert state["throttled"] is None


def fake_command(tmp_path: Path, name: str, script: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def test_vcgencmd_is_the_fallback_without_the_sysfs_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    vcgencmd = fake_command(
        tmp_path, "vcgencmd", 'test "$1" = get_throttled && echo throttled=0x20002\n'
    )
    device = make_device(tmp_path, root, vcgencmd=vcgencmd)
    state = await call(device, "refresh", who=ADMIN)
    assert state["throttled"]["now"]["freq_capped"] is True
    assert state["throttled"]["since_boot"]["freq_capped"] is True
    assert state["throttled"]["now"]["under_voltage"] is False
    assert "throttled" in device.capabilities()["sensors"]


async def test_failing_vcgencmd_gives_null(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    vcgencmd = fake_command(tmp_path, "vcgencmd", "echo 'VCHI init failed' >&2; exit 255\n")
    state = await call(make_device(tmp_path, root, vcgencmd=vcgencmd), "refresh", who=ADMIN)
    assert state["throttled"] is None
    assert "VCHI init failed" in caplog.text


async def test_pushes_only_meaningful_changes(tmp_path: Path, pi_tree: Path) -> None:
    device = make_device(tmp_path, pi_tree, refresh_interval=0.02)
    pushes: list[dict[str, Any]] = []
    device.add_listener(lambda d: pushes.append(d.state()))
    await device.start()
    try:
        baseline = len(pushes)
        write(pi_tree, "proc/uptime", "12399.00 40000.00\n")
        write(pi_tree, "sys/class/thermal/thermal_zone0/temp", "48400\n")  # 0.1 degree
        await asyncio.sleep(0.15)
        assert len(pushes) == baseline
        assert device.state()["uptime"] == 12399.0  # read, just not pushed
        write(pi_tree, "sys/class/thermal/thermal_zone0/temp", "61000\n")
        for _ in range(100):
            if len(pushes) > baseline:
                break
            await asyncio.sleep(0.01)
        assert pushes[-1]["cpu_temperature"] == 61.0
    finally:
        await device.stop()


def test_admin_only_actions_are_declared_admin(tmp_path: Path) -> None:
    actions = make_device(tmp_path, tmp_path).actions()
    assert actions["restart_agent"].role is Role.ADMIN
    assert actions["reboot"].role is Role.ADMIN
    assert actions["refresh"].role is Role.VIEWER


async def test_restart_and_reboot_run_their_callbacks_and_log_the_caller(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    restarts: list[str] = []
    reboots: list[str] = []

    async def reboot() -> None:
        reboots.append("reboot")

    device = make_device(
        tmp_path,
        tmp_path,
        on_restart=lambda: restarts.append("restart"),
        on_reboot=reboot,
        action_delay=0.0,
    )
    caplog.set_level(logging.WARNING)
    assert await call(device, "restart_agent", who=ADMIN) == {"restarting": True}
    await asyncio.sleep(0.01)
    assert restarts == ["restart"]
    assert await call(device, "reboot", who=ADMIN) == {"rebooting": True}
    assert reboots == ["reboot"]
    assert caplog.text.count(f"by client {ADMIN.client_id}") == 2


async def test_restart_and_reboot_are_refused_without_a_way_to_do_them(tmp_path: Path) -> None:
    ctx = DeviceContext(pin_factory=None, state_dir=tmp_path, mock=True, config_dir=tmp_path)
    device = create_system_device(ctx)
    assert device.id == "system"
    assert device.kind == "system"
    assert device.capabilities()["reboot"] is False
    with pytest.raises(Refused, match="restart"):
        await call(device, "restart_agent", who=ADMIN)
    with pytest.raises(Refused, match="reboot"):
        await call(device, "reboot", who=ADMIN)


async def test_capabilities_are_probed_at_each_refresh_not_at_each_login(tmp_path: Path) -> None:
    root = tmp_path / "bare"
    write(root, "proc/net/wireless", WIRELESS.split(" wlan0", maxsplit=1)[0])
    device = make_device(tmp_path, root)
    assert "wifi" not in device.capabilities()["sensors"]
    write(root, "proc/net/wireless", WIRELESS)  # a Wi-Fi adapter comes up
    assert "wifi" not in device.capabilities()["sensors"]
    await call(device, "refresh", who=ADMIN)
    assert "wifi" in device.capabilities()["sensors"]


async def test_a_command_that_is_missing_or_hangs_is_a_device_error(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="cannot run"):
        await run_command([str(tmp_path / "no-such-command")])
    hangs = fake_command(tmp_path, "hangs", "exec sleep 60\n")
    # The time limit is only the point where it gives up: the command would take a minute.
    with pytest.raises(DeviceError, match=r"did not answer within 0\.2 s"):
        await run_command([hangs], time_limit=0.2)
