"""How long a relay stays on when the agent fails: SIGKILL, a frozen loop, SIGTERM with slow
device shutdowns, a start with damaged state files. Prints each figure against its target
(issue 11) and against a floor measured in the same run: the start of a bare interpreter, which
no way off that runs as a new process can beat.

Usage: .venv311/bin/python benchmarks/safety.py [ROUNDS]   (default 5; a frozen loop: 2 rounds)

The scenarios are the tests in tests/agent/test_outputs_off.py, on the same rig
(pi_secure_ws_testing.garden): the systemd stand-in that honours the shipped unit file, mock pins
mirrored to a file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pi_secure_ws_testing.garden import BEDS, LAG, LAWN, PORCH, PUMP, Garden, make_garden

TARGETS = {
    "sigkill": 1.5,
    "frozen loop (after the deadline)": 10.0,
    "damaged state (after the start)": 5.0,
    "sigterm, slow shutdowns": 1.0,
    "overrun (re-sent run, then the client vanishes)": 1.0,
}


def floor() -> float:
    began = time.monotonic()
    subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
    return time.monotonic() - began


async def sigkill(garden: Garden) -> float:
    unit = await garden.start()
    try:
        client = await garden.watering()
        pins = garden.pins
        await client.close()
        killed = time.monotonic()
        os.kill(unit.main_pid(), signal.SIGKILL)
        await pins.wait(lambda: pins.off_now(PUMP) and pins.off_now(LAWN))
        return max(pins.off_at(PUMP, killed), pins.off_at(LAWN, killed)) - killed
    finally:
        unit.stop()


async def sigterm(garden: Garden) -> float:
    garden.env["PI_AGENT_FAULTS"] = "slow-stop=8"
    unit = await garden.start()
    client = await garden.watering()
    pins = garden.pins
    stopper = asyncio.create_task(asyncio.to_thread(unit.stop))
    term = await asyncio.to_thread(unit.wait_for, "stop")
    await pins.wait(lambda: pins.off_now(PUMP) and pins.off_now(LAWN))
    await client.close()
    await stopper
    return max(pins.off_at(PUMP, term.at), pins.off_at(LAWN, term.at)) - term.at


async def frozen(garden: Garden) -> float:
    garden.env["PI_AGENT_FAULTS"] = "hang-on-sigusr1"
    unit = await garden.start()
    try:
        client = await garden.watering(seconds=2)
        pins = garden.pins
        opened = pins.first(LAWN, active=True)
        assert opened is not None
        os.kill(unit.main_pid(), signal.SIGUSR1)
        await pins.wait(lambda: pins.off_now(LAWN) and pins.off_now(PUMP), timeout=30)
        await client.close()
        return pins.off_at(LAWN, opened.at) - (opened.at + 2)
    finally:
        unit.stop()


async def damaged(garden: Garden) -> float:
    state = garden.config_dir / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    for name in ("sprinklers.json", "lights.json", "blocklist.json"):
        (state / name).write_bytes(b"\xff\xfe" + b"[" * 100_000)
        (state / name).chmod(0o600)
    for gpio in (PUMP, LAWN, BEDS, PORCH):
        garden.pins.seed_on(gpio)
    unit = garden.unit()
    begun = time.monotonic()
    unit.start()
    try:
        await garden.pins.wait(garden.pins.all_off)
        return time.monotonic() - begun
    finally:
        unit.stop()


async def overrun(garden: Garden) -> float:
    """A 1.5 s zone (``beds``: max_seconds = 1.5) re-sent every 0.2 s by a client that then
    vanishes: how long past max_seconds + the pump's lag the valve stays open."""
    unit = await garden.start()
    try:
        client = garden.client()
        await client.connect()
        for _ in range(5):
            await client.call("sprinklers", "run", {"zone": "beds", "seconds": 1.5})
            await asyncio.sleep(0.2)
        await client.close()  # gone mid-run
        pins = garden.pins
        opened = pins.first(BEDS, active=True)
        assert opened is not None
        await pins.wait(lambda: pins.first(BEDS, active=False, after=opened.at) is not None)
        closed = pins.first(BEDS, active=False, after=opened.at)
        assert closed is not None
        return closed.at - (opened.at + 1.5 + LAG)
    finally:
        unit.stop()


async def main(rounds: int) -> None:
    floors = [floor() for _ in range(5)]
    base = statistics.median(floors)
    print(f"floor (bare interpreter start): {base:.3f} s (median of 5)")
    scenarios = (
        ("sigkill", sigkill, rounds),
        ("sigterm, slow shutdowns", sigterm, rounds),
        ("damaged state (after the start)", damaged, rounds),
        ("frozen loop (after the deadline)", frozen, min(rounds, 2)),
        ("overrun (re-sent run, then the client vanishes)", overrun, rounds),
    )
    for name, scenario, count in scenarios:
        figures = []
        for _ in range(count):
            with tempfile.TemporaryDirectory() as directory:
                figures.append(await scenario(make_garden(Path(directory))))
        worst = max(figures)
        what = "valve open past its deadline" if name.startswith("overrun") else "every output off"
        print(
            f"{name}: {what} after median {statistics.median(figures):.3f} s, "
            f"worst {worst:.3f} s of {count} (target {TARGETS[name]:g} s; "
            f"worst = {worst / base:.1f}x the floor)"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
