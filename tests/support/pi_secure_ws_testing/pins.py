"""Reading the mock pins' mirror (``PI_AGENT_PIN_LOG``, see pi_agent/pins.py) across processes.

Each line is one change of one MockFactory pin in some process (the agent, ``safe-off``):
``<monotonic> <pid> GPIO<n> <input|output> <level>``. A pin's last line is its level from then
on, also after the process that wrote it was killed (a Raspberry Pi OS kernel keeps a released
output at its last level), so "off" means: the last line is an output at the inactive level.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PinChange:
    at: float
    pid: int
    gpio: int
    function: str
    level: float


class PinLog:
    def __init__(self, path: Path, active_high: dict[int, bool]) -> None:
        self.path = path
        self.active_high = active_high  # every pin the test cares about

    def changes(self, gpio: int | None = None) -> list[PinChange]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        found = []
        for line in text.splitlines():
            at, pid, name, function, level = line.split()
            change = PinChange(float(at), int(pid), int(name[4:]), function, float(level))
            if gpio is None or change.gpio == gpio:
                found.append(change)
        return found

    def seed_on(self, gpio: int, pid: int = 1) -> None:
        """What a crashed earlier run leaves: ``gpio`` driven active by a process now gone."""
        level = 1 if self.active_high[gpio] else 0
        with self.path.open("a") as log:
            log.write(f"{time.monotonic():.6f} {pid} GPIO{gpio} output {level}\n")

    def is_active(self, change: PinChange) -> bool:
        active_level = 1.0 if self.active_high[change.gpio] else 0.0
        return change.function == "output" and change.level == active_level

    def is_off(self, change: PinChange) -> bool:
        inactive_level = 0.0 if self.active_high[change.gpio] else 1.0
        return change.function == "output" and change.level == inactive_level

    def last(self, gpio: int) -> PinChange | None:
        changes = self.changes(gpio)
        return changes[-1] if changes else None

    def on_now(self, gpio: int) -> bool:
        last = self.last(gpio)
        return last is not None and self.is_active(last)

    def off_now(self, gpio: int) -> bool:
        last = self.last(gpio)
        return last is not None and self.is_off(last)

    def all_off(self) -> bool:
        return all(self.off_now(gpio) for gpio in self.active_high)

    def first(self, gpio: int, *, active: bool, after: float = 0.0) -> PinChange | None:
        for change in self.changes(gpio):
            if change.at >= after and (self.is_active(change) if active else self.is_off(change)):
                return change
        return None

    def off_at(self, gpio: int, after: float) -> float:
        """When ``gpio`` went off for good after ``after`` (it is off now)."""
        assert self.off_now(gpio), f"GPIO{gpio} is not off: {self.last(gpio)}"
        went_off = after
        for change in self.changes(gpio):
            if change.at >= after and not self.is_off(change):
                went_off = change.at  # on (or floating) again later: count from the last off
        off = self.first(gpio, active=False, after=went_off)
        assert off is not None
        return off.at

    async def wait(self, predicate: object, timeout: float = 60.0) -> float:
        import asyncio

        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return time.monotonic()
            await asyncio.sleep(0.005)
        raise AssertionError(f"pin condition not reached in {timeout} s: {self.changes()[-10:]}")
