"""Outputs off first, through the real agent process under the shipped unit file.

Every test runs ``pi-agent run`` as a real process, most of them under ``FakeSystemd`` (the unit's
own Restart, RestartSec, WatchdogSec with sd_notify over a real socket, TimeoutStopSec,
ExecStartPre/ExecStopPost and exit statuses), on MockFactory pins whose every change is mirrored to
a file (``PI_AGENT_PIN_LOG``), so a relay's level is seen across SIGKILL and across processes.
The figures (how long a relay stayed on) are printed as ``FIGURE`` lines, never asserted:
docs/install.md has them.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pi_secure_ws_protocol.client import AgentClient
from pi_secure_ws_protocol.errors import PiSecureWsError
from pi_secure_ws_testing.garden import BEDS, LAG, LAWN, PORCH, PUMP, Garden, make_garden
from pi_secure_ws_testing.systemd import FakeSystemd


def figure(name: str, seconds: float) -> None:
    print(f"\nFIGURE {name}: {seconds:.3f} s")


@pytest.fixture
def garden(tmp_path: Path) -> Garden:
    return make_garden(tmp_path)


@pytest.fixture
def stopping() -> Iterator[list[FakeSystemd]]:
    units: list[FakeSystemd] = []
    yield units
    for unit in units:
        unit.stop()


async def started(garden: Garden, stopping: list[FakeSystemd]) -> FakeSystemd:
    unit = await garden.start()
    stopping.append(unit)
    return unit


async def watering(garden: Garden, closing: list[AgentClient], zone: str = "lawn") -> AgentClient:
    """``closing`` is the shared fixture (tests/agent/conftest.py)."""
    client = await garden.watering(zone)
    closing.append(client)
    return client


async def test_sigkill_safe_off_from_exec_stop_post(
    garden: Garden, stopping: list[FakeSystemd], closing: list[AgentClient]
) -> None:
    unit = await started(garden, stopping)
    await watering(garden, closing)
    first_pid = unit.main_pid()
    killed = time.monotonic()
    os.kill(first_pid, signal.SIGKILL)
    pins = garden.pins
    await pins.wait(lambda: pins.off_now(PUMP) and pins.off_now(LAWN))
    pump_off, lawn_off = pins.off_at(PUMP, killed), pins.off_at(LAWN, killed)
    figure("sigkill: pump off after", pump_off - killed)
    figure("sigkill: every output off after", max(pump_off, lawn_off) - killed)
    # Not the dead agent (it runs no code): safe-off, from the unit's ExecStopPost.
    post = await asyncio.to_thread(unit.wait_for, "stop-post", killed)
    assert {c.pid for c in pins.changes() if c.at >= killed and pins.is_off(c)} >= {post.pid}
    assert pump_off <= lawn_off  # the pump first, then its valve
    # The unit restarts the agent (Restart=always), which keeps everything off.
    await asyncio.to_thread(unit.wait_for, "ready", killed)
    assert unit.main_pid() != first_pid
    assert pins.all_off()
    assert [c for c in pins.changes() if c.at > killed and pins.is_active(c)] == []


async def test_frozen_loop_guard_thread_then_watchdog(
    garden: Garden, stopping: list[FakeSystemd], closing: list[AgentClient]
) -> None:
    garden.env["PI_AGENT_FAULTS"] = "hang-on-sigusr1"
    unit = await started(garden, stopping)
    client = garden.client()
    closing.append(client)
    await client.connect()
    await client.call("sprinklers", "run", {"zone": "lawn", "seconds": 2})
    pins = garden.pins
    await pins.wait(lambda: pins.on_now(LAWN) and pins.on_now(PUMP))
    opened = pins.first(LAWN, active=True)
    assert opened is not None
    deadline = opened.at + 2
    frozen = time.monotonic()
    os.kill(unit.main_pid(), signal.SIGUSR1)  # the loop's thread now blocks for two minutes
    await pins.wait(lambda: pins.off_now(LAWN) and pins.off_now(PUMP), timeout=30)
    lawn_off = pins.off_at(LAWN, opened.at)
    # Switched off by the agent's own guard thread, while its loop was stuck.
    assert pins.last(LAWN).pid == opened.pid  # type: ignore[union-attr]
    figure("frozen loop: valve off after its deadline", lawn_off - deadline)
    assert pins.off_at(PUMP, opened.at) <= lawn_off
    # systemd's watchdog then kills the stuck agent; ExecStopPost and a restart follow.
    watchdog = await asyncio.to_thread(unit.wait_for, "watchdog", deadline)
    figure("frozen loop: watchdog kill after the freeze", watchdog.at - frozen)
    await asyncio.to_thread(unit.wait_for, "stop-post", watchdog.at)
    await asyncio.to_thread(unit.wait_for, "ready", watchdog.at)
    assert pins.all_off()


@pytest.mark.parametrize(
    "damage", [b"\xff\xfe\x00\x80", b"[" * 200_000], ids=["not-utf8", "deeply-nested"]
)
async def test_damaged_state_files_never_block_the_way_off(
    garden: Garden, stopping: list[FakeSystemd], damage: bytes
) -> None:
    state = garden.config_dir / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    for name in ("sprinklers.json", "lights.json", "blocklist.json"):
        (state / name).write_bytes(damage)
        (state / name).chmod(0o600)
    # A valve and the pump left on by the run that damaged the files (the kernel keeps them).
    for gpio in (PUMP, LAWN, PORCH):
        garden.pins.seed_on(gpio)
    # First the agent alone (no ExecStartPre): its own start switches them off.
    begun = time.monotonic()
    agent = garden.run_agent()
    try:
        await garden.pins.wait(garden.pins.all_off)
        figure("damaged state: agent alone, outputs off after start", time.monotonic() - begun)
        assert {c.pid for c in garden.pins.changes() if c.at >= begun} == {agent.pid}
        assert agent.poll() is None
    finally:
        agent.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(agent.wait, 30) == 0
    for gpio in (PUMP, LAWN, PORCH):
        garden.pins.seed_on(gpio)
    for name in ("sprinklers.json", "lights.json", "blocklist.json"):
        (state / name).write_bytes(damage)
        (state / name).chmod(0o600)
    begun = time.monotonic()
    unit = await started(garden, stopping)
    figure(
        "damaged state: under the unit, outputs off after start",
        garden.pins.off_at(LAWN, begun) - begun,
    )
    await asyncio.sleep(3)
    assert unit.starts == 1, "the agent is in a restart loop"
    assert unit.find("exited") == []
    assert garden.pins.all_off()
    assert (state / "sprinklers.json.corrupt").read_bytes() == damage


async def test_sigterm_with_slow_device_shutdowns(
    garden: Garden, stopping: list[FakeSystemd], closing: list[AgentClient]
) -> None:
    garden.env["PI_AGENT_FAULTS"] = "slow-stop=8"  # camera/frame/system each take 8 s to stop
    unit = await started(garden, stopping)
    client = await watering(garden, closing)
    pid = unit.main_pid()
    stopping.remove(unit)
    stopper = asyncio.create_task(asyncio.to_thread(unit.stop))
    term = await asyncio.to_thread(unit.wait_for, "stop")
    pins = garden.pins
    await pins.wait(lambda: pins.off_now(PUMP) and pins.off_now(LAWN))
    pump_off, lawn_off = pins.off_at(PUMP, term.at), pins.off_at(LAWN, term.at)
    figure("sigterm, slow shutdowns: pump off after", pump_off - term.at)
    figure("sigterm, slow shutdowns: every output off after", lawn_off - term.at)
    # The agent did it itself (not the ExecStopPost safety net), pump first, valve after the lag.
    assert pins.last(LAWN).pid == pid  # type: ignore[union-attr]
    assert lawn_off - pump_off >= LAG
    with pytest.raises(PiSecureWsError):  # refused ("shutting down"), or the session is gone
        await client.call("sprinklers", "run", {"zone": "lawn", "seconds": 5})
    await stopper
    exited = unit.find("exited")[-1]
    assert exited.detail == "0", "TimeoutStopSec killed the agent"
    assert unit.find("final-kill") == []
    # Held, not released: the agent never turned the relay pins into floating inputs.
    assert [c for c in pins.changes() if c.pid == pid and c.function == "input"] == []


async def test_exit_78_only_after_outputs_are_off(
    garden: Garden, stopping: list[FakeSystemd]
) -> None:
    (garden.config_dir / "clients.json").chmod(0o644)  # a problem only the user can fix
    for gpio in (PUMP, LAWN):
        garden.pins.seed_on(gpio)
    agent = garden.run_agent()
    assert await asyncio.to_thread(agent.wait, 60) == 78
    assert garden.pins.all_off()
    assert {c.pid for c in garden.pins.changes() if garden.pins.is_off(c)} >= {agent.pid}
    # Under the unit: no restart after 78 (RestartPreventExitStatus), ExecStopPost still runs.
    for gpio in (PUMP, LAWN):
        garden.pins.seed_on(gpio)
    unit = garden.unit()
    stopping.append(unit)
    unit.start()
    failed = await asyncio.to_thread(unit.wait_for, "failed")
    assert failed.detail == "78"
    assert unit.starts == 1
    assert len(unit.find("stop-post")) == 1
    assert garden.pins.all_off()


async def test_bad_agent_toml_still_switches_the_relays_off(garden: Garden) -> None:
    toml = garden.config_dir / "agent.toml"
    toml.write_text(toml.read_text() + "\n[frame]\nno_such_option = 1\n")
    for gpio in (PUMP, LAWN):
        garden.pins.seed_on(gpio)
    agent = garden.run_agent()
    assert await asyncio.to_thread(agent.wait, 60) == 78
    assert garden.pins.all_off()
    assert garden.pins.last(LAWN).pid == agent.pid  # type: ignore[union-attr]


async def test_sigterm_during_start_up_still_stops_safely(garden: Garden) -> None:
    agent = garden.run_agent()
    pins = garden.pins
    # The first relay is built: the agent is starting (TLS, keys, clients still to come).
    await pins.wait(lambda: any(c.pid == agent.pid for c in pins.changes()))
    agent.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(agent.wait, 60) == 0
    assert pins.all_off()
    assert [c for c in pins.changes() if c.function == "input"] == []


async def test_repeated_run_cannot_extend_max_run(
    garden: Garden, stopping: list[FakeSystemd], closing: list[AgentClient]
) -> None:
    await started(garden, stopping)
    client = garden.client()
    closing.append(client)
    await client.connect()
    pins = garden.pins
    result = await client.call("sprinklers", "run", {"zone": "beds", "seconds": 1.5})
    assert result["status"] in {"running", "starting"}
    resent_until = time.monotonic() + 5
    capped = False
    while time.monotonic() < resent_until:  # a client insisting, far past max_seconds (1.5 s)
        answer = await client.call("sprinklers", "run", {"zone": "beds", "seconds": 1.5})
        capped = capped or bool(answer.get("capped"))
        await asyncio.sleep(0.2)
        if pins.first(BEDS, active=False, after=pins.first(BEDS, active=True).at):  # type: ignore[union-attr]
            break
    opened = pins.first(BEDS, active=True)
    assert opened is not None
    closed = pins.first(BEDS, active=False, after=opened.at)
    assert closed is not None, "re-sending run kept the zone open"
    assert capped
    figure("max run 1.5 s, re-sent every 0.2 s: open for", closed.at - opened.at)
    assert closed.at - opened.at < 5 - 1


async def test_two_clients_cannot_make_a_relay_chatter(
    garden: Garden, stopping: list[FakeSystemd], closing: list[AgentClient]
) -> None:
    await started(garden, stopping)
    first, second = garden.client(), garden.client()
    closing.extend([first, second])
    await first.connect()
    await second.connect()
    begun = time.monotonic()

    async def fight(client: AgentClient, action: str) -> None:
        for _ in range(40):
            params = {"zone": "lawn", "seconds": 30} if action == "run" else {"zone": "lawn"}
            await client.call("sprinklers", action, params)

    await asyncio.gather(fight(first, "run"), fight(second, "stop"))
    ended = time.monotonic()
    await first.call("sprinklers", "stop_all", {})
    switches = [c for c in garden.pins.changes(LAWN) if begun <= c.at <= ended]
    interval = 0.5  # min_switch_interval in GARDEN
    # At most one "on" per interval, each followed by at most one "off".
    assert len(switches) <= 2 * (math.ceil((ended - begun) / interval) + 1)
    figure(f"80 alternating run/stop in {ended - begun:.2f} s: valve switches", len(switches))
