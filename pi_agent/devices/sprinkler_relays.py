"""The sprinkler controller's relays: built off, switched off in the safe order, guarded.

One bank holds the pump (or master valve) and every zone valve, and the ``DeadlineGuard`` thread
(relays.py) that switches them all off if the event loop misses a deadline. Every way off here
switches the pump first and the valves ``lag`` seconds later when the pump was running, so it never
pushes against closed valves; one failing relay never keeps the others on. The time comes from an
injected :class:`Clock` (the system's, or a test's fake).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from pi_agent.devices.gpio import build_output
from pi_agent.devices.relays import DeadlineGuard, Relay, switch_all_off
from pi_agent.devices.sprinkler_config import ControllerSettings
from pi_agent.devices.sprinkler_plan import Plan, RelayState, evolve
from pi_agent.devices.sprinkler_schedule import Switch, deadlines


class Clock(Protocol):
    """Where the controller reads the time: ``monotonic`` for deadlines, ``wall`` (UTC) to show."""

    def monotonic(self) -> float: ...

    def wall(self) -> datetime: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_CLOCK: Final = SystemClock()


class SprinklerRelays:
    """The pump first, then the zone valves by id; every relay off from the moment it is built."""

    def __init__(
        self, settings: ControllerSettings, pin_factory: Any, clock: Callable[[], float]
    ) -> None:
        self._lag = settings.lag
        self._clock = clock
        lock = threading.Lock()  # one lock for every write, the guard thread's too
        self.pump: Relay | None = None
        self.valves: dict[str, Relay] = {}
        built: list[Relay] = []

        def relay(name: str, pin: int, active_high: bool, key: str) -> Relay:
            output = build_output(pin_factory, pin, key=key, active_high=active_high)
            built.append(Relay(name, pin, output, lock, clock=clock))
            return built[-1]

        try:
            if settings.pump is not None:
                pump = settings.pump
                self.pump = relay(pump.name, pump.pin, pump.active_high, pump.key)
            for zone in settings.zones.values():
                self.valves[zone.id] = relay(zone.name, zone.pin, zone.active_high, zone.key)
        except BaseException:
            for done in built:
                done.hold()
            raise
        self.guard = DeadlineGuard(self.pump, list(self.valves.values()), self._lag, clock=clock)
        self._valves_timer: asyncio.TimerHandle | None = None
        self._stopping = False

    def all(self) -> list[Relay]:
        """The pump first: every "all off" switches it before the valves."""
        return ([self.pump] if self.pump is not None else []) + list(self.valves.values())

    def switch(self, command: Switch) -> float:
        """Carry out a scheduler's command (raises RelayError); when the relay last changed."""
        relay = self.pump if command.zone is None else self.valves[command.zone]
        assert relay is not None, "a pump command without a pump"
        relay.switch(command.on)
        return relay.last_change

    def observe(self, plan: Plan) -> Plan:
        """``plan`` with the relays' real levels (the guard thread may have changed them)."""
        pump = self.pump
        valves = {
            zone: RelayState(relay.on, relay.last_change) for zone, relay in self.valves.items()
        }
        pump_state = None if pump is None else RelayState(pump.on, pump.last_change)
        if valves == plan.valves and pump_state == plan.pump:
            return plan  # nearly always: a new plan only when a relay really changed
        return evolve(plan, valves=valves, pump=pump_state)

    def publish(self, plan: Plan) -> None:
        """Tell the guard thread the latest moment each relay that is on must be off."""
        if self._stopping:
            return
        due = deadlines(self._clock(), self.observe(plan))
        published = {self.valves[zone]: at for zone, at in due.valves.items()}
        if self.pump is not None and due.pump is not None:
            published[self.pump] = due.pump
        self.guard.publish(published)

    def all_off(self, after_lag: Callable[[list[str]], None]) -> tuple[list[str], float | None]:
        """The pump (or master valve) off now, the valves after its lag if it was on (at once
        otherwise). Returns the failures, and until when the valves close (None: closed).

        The valves' own failures after the lag go to ``after_lag``, from the event loop.
        """
        pump = self.pump
        pump_was_on = pump is not None and pump.on
        failures = [] if pump is None else switch_all_off([pump])
        zones = list(self.valves.values())
        if not (pump_was_on and self._lag > 0 and any(relay.on for relay in zones)):
            return failures + switch_all_off(zones), None
        closing_until = self._clock() + self._lag
        self.guard.publish({relay: closing_until for relay in zones if relay.on})

        def close_valves() -> None:
            self._valves_timer = None
            if not self._stopping:  # else stop() closes them
                after_lag(switch_all_off(self.valves.values()))

        try:
            self._valves_timer = asyncio.get_running_loop().call_later(self._lag, close_valves)
        except RuntimeError:  # no loop (start-up, tools): nothing would run the timer
            return failures + switch_all_off(zones), None
        return failures, closing_until

    async def stop(self) -> list[str]:
        """The pump off at once, the valves after its lag, every pin held at its inactive level.

        Never raises; returns the failures. Nothing waits for anything but the lag.
        """
        self._stopping = True
        pump = self.pump
        pump_was_on = pump is not None and pump.on
        failures = [] if pump is None else switch_all_off([pump])
        zones = list(self.valves.values())
        if pump_was_on and self._lag > 0 and any(relay.on for relay in zones):
            # The guard still holds the valves to the lag if this task is never resumed.
            closing_until = self._clock() + self._lag
            self.guard.publish({relay: closing_until for relay in zones if relay.on})
            try:
                await asyncio.sleep(self._lag)
            finally:  # cancelled too: the valves close now rather than never
                failures += switch_all_off(zones)
        failures += switch_all_off(zones)
        self.guard.stop()
        for relay in self.all():
            relay.hold()
        return failures
