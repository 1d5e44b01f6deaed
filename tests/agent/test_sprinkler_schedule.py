"""The sprinkler scheduler on a fake clock: exact moments, no sleeping, no pins.

``FakeGarden`` runs what the controller runs (pass after pass of ``step`` until it settles, then
sleep ``next_wake``) on a clock the test moves, and logs every relay command with its moment.
The real controller on real pins is tested in test_sprinklers.py and over the wire in
test_outputs_off.py; at the end of this file it runs on a fake clock too, to show it reads no
other.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin
from pi_secure_ws_testing.devices import call

from pi_agent.devices import sprinklers
from pi_agent.devices.base import DeviceContext, Refused
from pi_agent.devices.sprinkler_config import ControllerSettings, Supply
from pi_agent.devices.sprinkler_plan import (
    Now,
    Phase,
    Plan,
    Queued,
    clear_queue,
    evolve,
    open_for,
    run_answer,
    run_zone,
    stop_all,
    stop_zone,
    watered_left,
)
from pi_agent.devices.sprinkler_plan import (
    state as plan_state,
)
from pi_agent.devices.sprinkler_schedule import (
    MIN_SLEEP,
    RainDelayEnded,
    Switch,
    deadlines,
    next_wake,
    step,
    switched,
)
from pi_agent.devices.watering_ledger import WateringLedger
from pi_agent.state_store import StateStore

T0 = 1000.0  # the fake monotonic clock's start
WALL0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
PUMP = "pump"  # the pump or master valve, in the log
LEAD = 1.0
LAG = 2.0


def settings(*, pump: dict[str, Any] | None = None, **overrides: Any) -> ControllerSettings:
    section: dict[str, Any] = {
        "max_run_seconds": 60,
        "min_switch_interval": 0.0,
        "zone": [{"id": "lawn", "pin": 5}, {"id": "beds", "pin": 6}, {"id": "hedge", "pin": 13}],
        **overrides,
    }
    if pump is not None:
        section["pump"] = {"pin": 19, "lead": LEAD, "lag": LAG, **pump}
    return ControllerSettings.from_config(section)


class FakeGarden:
    """The controller's loop on a fake clock; ``log`` holds (moment, relay, on) from T0."""

    def __init__(self, config: ControllerSettings) -> None:
        self.plan = Plan.initial(config)
        self.monotonic = T0
        self.wall = WALL0
        self.log: list[tuple[float, str, bool]] = []
        self.ended_rain_delays = 0
        self.opened_for: dict[str, float] = {}
        # How long after the pass's start a relay's write lands (a busy Pi: a millisecond or more).
        self.write_delay: dict[str, float] = {}

    def now(self) -> Now:
        return Now(self.monotonic, self.wall)

    def advance(self, seconds: float, *, wall: float | None = None) -> None:
        """Move both clocks (the wall clock by ``wall`` instead, to jump it)."""
        self.monotonic += seconds
        self.wall += timedelta(seconds=seconds if wall is None else wall)

    def run(self, zone: str, seconds: float) -> dict[str, Any]:
        """What the controller's ``run`` does: the plan takes it, a pass runs, it answers."""
        self.plan = run_zone(self.plan, self.now(), zone, seconds)
        self.settle()
        return run_answer(self.plan, self.now(), zone, seconds).to_wire()

    def stop(self, zone: str) -> bool:
        self.plan, stopped = stop_zone(self.plan, zone)
        self.settle()
        return stopped

    def state(self) -> dict[str, Any]:
        return plan_state(self.plan, self.monotonic, fault=None).to_wire()

    def is_on(self, zone: str) -> bool:
        return self.plan.valve(zone).on

    def switched(self, relay: str, on: bool) -> float:
        """When ``relay`` was first switched on (or off)."""
        return next(at for at, name, level in self.log if name == relay and level == on)

    def sleep_until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            assert self.sleep(), "idle before the condition was reached"

    def settle(self) -> None:
        """One scheduling pass at the current moment."""
        now = self.now()
        for _ in range(100):
            result = step(now, self.plan)
            if result is None:
                return
            self.plan = result.plan
            command = result.command
            if isinstance(command, Switch):
                landed = self.monotonic + self.write_delay.get(command.zone or PUMP, 0.0)
                self.log.append((landed - T0, command.zone or PUMP, command.on))
                self.plan = switched(self.plan, command, landed)
                if command.zone is not None and not command.on:
                    self.opened_for[command.zone] = command.opened_for
            elif isinstance(command, RainDelayEnded):
                self.ended_rain_delays += 1
        raise AssertionError("the pass did not settle")

    def sleep(self, limit: float = 1e6) -> bool:
        """Sleep as the supervisor would (at most ``limit``) and run the pass; False when idle."""
        wake = next_wake(self.now(), self.plan)
        if wake is None:
            return False
        self.advance(min(wake, limit))
        self.settle()
        return True

    def run_until_idle(self) -> None:
        for _ in range(1000):
            if not self.sleep():
                return
        raise AssertionError("never idle")

    def phase(self, zone: str) -> Phase | None:
        run = self.plan.run_of(zone)
        return None if run is None else run.phase


def test_a_run_opens_at_once_and_closes_at_its_deadline() -> None:
    garden = FakeGarden(settings())
    assert next_wake(garden.now(), garden.plan) is None
    garden.run("lawn", 10)
    assert garden.phase("lawn") is Phase.OPEN
    run = garden.plan.run_of("lawn")
    assert run is not None
    assert run.ends_at == WALL0 + timedelta(seconds=10)
    assert next_wake(garden.now(), garden.plan) == 10
    garden.advance(9.5)
    garden.settle()
    assert garden.log == [(0.0, "lawn", True)]
    garden.run_until_idle()
    assert garden.log == [(0.0, "lawn", True), (10.0, "lawn", False)]
    assert garden.plan.runs == ()
    assert next_wake(garden.now(), garden.plan) is None


def test_pump_lead_and_lag_and_every_phase() -> None:
    garden = FakeGarden(settings(pump={}))
    garden.run("lawn", 10)
    assert garden.phase("lawn") is Phase.OPEN
    assert garden.log == [(0.0, "lawn", True)]  # the valve first, the pump LEAD later
    assert next_wake(garden.now(), garden.plan) == LEAD
    garden.sleep()
    assert garden.log[-1] == (LEAD, PUMP, True)
    garden.sleep()  # the deadline: the pump stops, the valve stays open for the lag
    assert garden.log[-1] == (10.0, PUMP, False)
    assert garden.phase("lawn") is Phase.CLOSING
    garden.run_until_idle()
    assert garden.log == [
        (0.0, "lawn", True),
        (LEAD, PUMP, True),
        (10.0, PUMP, False),
        (10.0 + LAG, "lawn", False),
    ]
    assert garden.phase("lawn") is None


def test_master_valve_opens_first_and_closes_last() -> None:
    garden = FakeGarden(settings(pump={"type": "master_valve"}))
    assert garden.plan.settings.supply is Supply.MASTER_VALVE
    garden.run("lawn", 10)
    assert garden.phase("lawn") is Phase.STARTING
    assert garden.log == [(0.0, PUMP, True)]
    garden.run_until_idle()
    assert garden.log == [
        (0.0, PUMP, True),
        (LEAD, "lawn", True),
        (LEAD + 10, "lawn", False),
        (LEAD + 10 + LAG, PUMP, False),
    ]


def test_the_master_valve_stays_open_between_queued_zones() -> None:
    garden = FakeGarden(settings(pump={"type": "master_valve"}))
    garden.run("lawn", 5)
    garden.run("beds", 5)
    garden.run_until_idle()
    assert garden.log == [
        (0.0, PUMP, True),
        (LEAD, "lawn", True),
        (LEAD + 5, "lawn", False),
        # The master valve is open already and has been for its lead: the next zone opens at once.
        (LEAD + 5, "beds", True),
        (LEAD + 10, "beds", False),
        (LEAD + 10 + LAG, PUMP, False),
    ]


def test_no_pump_runs_against_a_run_shorter_than_its_lead() -> None:
    garden = FakeGarden(settings(pump={}))
    garden.run("lawn", LEAD / 2)
    garden.run_until_idle()
    assert garden.log == [(0.0, "lawn", True), (LEAD / 2, "lawn", False)]


# -- moved here off real time from test_sprinklers.py, with the same assertions


def test_queued_runs_start_in_fifo_order_one_at_a_time() -> None:
    garden = FakeGarden(settings())
    first = garden.run("hedge", 15)
    second = garden.run("lawn", 15)
    third = garden.run("beds", 15)
    assert first["status"] == "running"
    assert (second["status"], second["position"]) == ("queued", 1)
    assert (third["status"], third["position"]) == ("queued", 2)
    assert garden.state()["queue"] == [
        {"zone": "lawn", "seconds": 15},
        {"zone": "beds", "seconds": 15},
    ]
    garden.run_until_idle()
    assert garden.log == [
        (0.0, "hedge", True),
        (15.0, "hedge", False),
        (15.0, "lawn", True),
        (30.0, "lawn", False),
        (30.0, "beds", True),
        (45.0, "beds", False),
    ]


def most_zones_open_at_once(log: list[tuple[float, str, bool]]) -> int:
    open_now: set[str] = set()
    most = 0
    for _at, relay, on in log:
        if relay != PUMP:
            (open_now.add if on else open_now.discard)(relay)
            most = max(most, len(open_now))
    return most


def test_max_concurrent_lets_two_zones_run_together() -> None:
    garden = FakeGarden(settings(max_concurrent=2))
    garden.run("lawn", 20)
    garden.run("beds", 30)
    third = garden.run("hedge", 10)
    assert third["status"] == "queued"
    assert garden.is_on("lawn")
    assert garden.is_on("beds")
    assert not garden.is_on("hedge")
    # The third starts when the first one's slot frees up, while the second still runs.
    garden.sleep_until(lambda: garden.is_on("hedge"))
    assert not garden.is_on("lawn")
    assert garden.is_on("beds")
    garden.run_until_idle()
    assert most_zones_open_at_once(garden.log) == 2
    assert garden.log == [
        (0.0, "lawn", True),
        (0.0, "beds", True),
        (20.0, "lawn", False),
        (20.0, "hedge", True),
        (30.0, "beds", False),
        (30.0, "hedge", False),
    ]


def test_queue_delay_pauses_between_queued_zones() -> None:
    garden = FakeGarden(settings(queue_delay=20))
    garden.run("lawn", 10)
    garden.run("beds", 10)
    garden.sleep_until(lambda: garden.is_on("beds"))
    assert garden.switched("beds", True) - garden.switched("lawn", False) == 20


def test_pump_keeps_running_between_back_to_back_zones_of_two_slots() -> None:
    garden = FakeGarden(settings(pump={}, max_concurrent=2))
    garden.run("lawn", 15)
    garden.run("beds", 30)
    garden.run_until_idle()
    assert [on for _at, relay, on in garden.log if relay == PUMP] == [True, False]
    # The pump stopped before the last valve closed.
    assert garden.switched("beds", False) - garden.switched(PUMP, False) >= LAG
    assert garden.log == [
        (0.0, "lawn", True),
        (0.0, "beds", True),
        (LEAD, PUMP, True),
        (15.0, "lawn", False),  # another valve is still open: no lag for this one
        (30.0, PUMP, False),
        (30.0 + LAG, "beds", False),
    ]


def test_running_a_running_zone_restarts_its_timer() -> None:
    garden = FakeGarden(settings())
    garden.run("lawn", 20)
    garden.advance(10)
    garden.settle()
    extended = garden.monotonic - T0
    result = garden.run("lawn", 30)
    assert result["status"] == "running"
    garden.run_until_idle()
    assert garden.switched("lawn", False) - extended == 30


def test_rain_delay_ends_by_itself_and_the_queue_resumes() -> None:
    garden = FakeGarden(settings())
    garden.run("lawn", 5)
    garden.run("beds", 10)
    until = garden.wall + timedelta(seconds=30)
    garden.plan = replace(garden.plan, rain_delay_until=until)
    garden.sleep_until(lambda: garden.is_on("beds"))
    assert garden.wall >= until
    assert garden.state()["rain_delay_until"] is None
    assert garden.ended_rain_delays == 1


def test_re_sending_run_never_extends_the_continuous_cap() -> None:
    cap = 50
    garden = FakeGarden(settings(max_run_seconds=cap))
    first = garden.run("lawn", cap)
    assert first["status"] == "running"
    opened = garden.switched("lawn", True)
    capped = False
    while garden.is_on("lawn") and garden.monotonic - T0 < opened + 500:
        answer = garden.run("lawn", cap)
        capped = capped or answer.get("capped", False)
        garden.sleep(limit=5)
    assert not garden.is_on("lawn"), "re-sending run kept the zone open"
    assert capped
    assert garden.switched("lawn", False) - opened == cap


def test_min_switch_interval_stops_two_callers_from_chattering() -> None:
    garden = FakeGarden(settings(min_switch_interval=3))
    for _ in range(50):
        garden.run("lawn", 40)
        garden.stop("lawn")
        garden.advance(0.25)
    burst = garden.monotonic - T0
    lawn = [(at, on) for at, relay, on in garden.log if relay == "lawn"]
    assert len(lawn) <= 2 * (int(burst / 3) + 2)
    ons = [at for at, on in lawn if on]
    offs = [at for at, on in lawn if not on]
    # Never on sooner than the interval after the last change; "off" is never delayed.
    for on_at in ons:
        before = [at for at in offs if at < on_at]
        assert not before or on_at - before[-1] >= 3
    assert len(ons) >= 4  # it did switch, at the interval: not refused for good


def test_min_switch_interval_delays_only_switching_on() -> None:
    garden = FakeGarden(settings(min_switch_interval=3))
    garden.run("lawn", 10)
    garden.advance(1)
    garden.plan, stopped = stop_zone(garden.plan, "lawn")
    assert stopped
    garden.settle()  # off at once
    garden.run("lawn", 1)
    assert garden.phase("lawn") is Phase.STARTING  # on no sooner than 3 s after the last change
    assert next_wake(garden.now(), garden.plan) == 3
    garden.run_until_idle()
    assert garden.log == [
        (0.0, "lawn", True),
        (1.0, "lawn", False),
        (4.0, "lawn", True),
        (5.0, "lawn", False),
    ]


def test_stop_zone_stop_all_and_clear_queue() -> None:
    garden = FakeGarden(settings(pump={}, max_concurrent=2))
    for zone in ("lawn", "beds", "hedge"):
        garden.run(zone, 20)
    garden.sleep()  # the pump starts
    garden.plan, stopped = stop_zone(garden.plan, "hedge")
    assert stopped
    assert garden.plan.queue == ()
    garden.plan, stopped = stop_zone(garden.plan, "hedge")
    assert not stopped
    garden.run("hedge", 20)
    assert clear_queue(garden.plan)[1] == 1
    garden.plan = stop_all(garden.plan)
    garden.settle()
    garden.run_until_idle()
    assert garden.log == [
        (0.0, "lawn", True),
        (0.0, "beds", True),
        (LEAD, PUMP, True),
        (LEAD, PUMP, False),  # the pump first
        (LEAD + LAG, "lawn", False),
        (LEAD + LAG, "beds", False),
    ]


def test_stopping_a_zone_that_waits_for_the_master_valve_drops_it() -> None:
    garden = FakeGarden(settings(pump={"type": "master_valve"}))
    garden.run("lawn", 5)
    assert garden.phase("lawn") is Phase.STARTING
    garden.plan, stopped = stop_zone(garden.plan, "lawn")
    assert stopped
    garden.settle()
    # No zone valve opened behind it: the master valve closes at once, with no lag.
    assert garden.log == [(0.0, PUMP, True), (0.0, PUMP, False)]
    assert next_wake(garden.now(), garden.plan) is None


def test_running_again_restarts_the_timer_within_the_zones_cap() -> None:
    garden = FakeGarden(settings(max_run_seconds=10))
    garden.run("lawn", 6)
    garden.advance(5)
    garden.run("lawn", 6)  # from now: ends at 11, still within 10 s of opening? no: capped
    run = garden.plan.run_of("lawn")
    assert run is not None
    assert (run.deadline - T0, run.limit_at - T0) == (10.0, 10.0)
    garden.advance(1)
    garden.run("lawn", 2)  # 8 s is within the cap
    assert garden.plan.run_of("lawn").deadline - T0 == 8.0  # type: ignore[union-attr]
    garden.run_until_idle()
    assert garden.log == [(0.0, "lawn", True), (8.0, "lawn", False)]


def test_running_a_closing_zone_opens_it_again() -> None:
    garden = FakeGarden(settings(pump={}))
    garden.run("lawn", 3)
    garden.run_until_idle()
    garden.log.clear()
    garden.run("lawn", 5)
    garden.sleep()
    garden.sleep()  # deadline: the pump stops, the valve waits out the lag
    assert garden.phase("lawn") is Phase.CLOSING
    garden.run("lawn", 5)
    assert garden.phase("lawn") is Phase.OPEN
    garden.run_until_idle()
    assert [entry[1:] for entry in garden.log] == [
        ("lawn", True),
        (PUMP, True),
        (PUMP, False),
        (PUMP, True),
        (PUMP, False),
        ("lawn", False),
    ]


def test_the_day_cap_counts_every_run() -> None:
    garden = FakeGarden(settings(max_seconds_per_day=10))
    garden.run("lawn", 4)
    garden.run_until_idle()
    assert garden.opened_for == {"lawn": 4.0}
    assert garden.plan.watered == {"lawn": 4.0}
    garden.run("lawn", 30)  # cut to the 6 s left today
    garden.advance(2)
    assert watered_left(garden.plan, "lawn", garden.monotonic) == 4.0
    assert open_for(garden.plan, garden.monotonic) == {"lawn": 2.0}
    garden.run_until_idle()
    assert garden.log[-1] == (4.0 + 2 + 4, "lawn", False)
    assert watered_left(garden.plan, "lawn", garden.monotonic) == 0.0
    assert watered_left(garden.plan, "beds", garden.monotonic) == 10.0


def test_a_zone_without_a_day_cap_is_not_counted() -> None:
    garden = FakeGarden(settings())
    garden.run("lawn", 4)
    garden.run_until_idle()
    assert garden.plan.watered == {}
    assert watered_left(garden.plan, "lawn", garden.monotonic) == float("inf")


def test_rain_delay_holds_the_queue_and_ends_by_the_wall_clock() -> None:
    garden = FakeGarden(settings())
    garden.run("lawn", 5)
    garden.run("beds", 5)
    garden.plan = replace(garden.plan, rain_delay_until=WALL0 + timedelta(seconds=60))
    assert garden.plan.rain_delay_active(garden.now())
    with pytest.raises(Refused, match=r"rain delay until 2026-06-01T05:01:00.000\+00:00"):
        run_zone(garden.plan, garden.now(), "hedge", 5)
    garden.sleep()  # the running zone finishes its run
    assert garden.log == [(0.0, "lawn", True), (5.0, "lawn", False)]
    assert next_wake(garden.now(), garden.plan) == 55
    garden.run_until_idle()
    assert garden.ended_rain_delays == 1
    assert garden.plan.rain_delay_until is None
    assert garden.log[2:] == [(60.0, "beds", True), (65.0, "beds", False)]


def test_a_wall_clock_jump_moves_neither_deadline_nor_lag() -> None:
    garden = FakeGarden(settings(pump={}))
    garden.run("lawn", 10)
    garden.advance(LEAD, wall=-3600)  # NTP sets the clock back an hour
    garden.settle()
    garden.advance(9, wall=86400)  # and forward a day
    garden.settle()
    garden.run_until_idle()
    assert garden.log == [
        (0.0, "lawn", True),
        (LEAD, PUMP, True),
        (10.0, PUMP, False),
        (10.0 + LAG, "lawn", False),
    ]


def test_a_wall_clock_jump_ends_a_rain_delay_and_a_backward_one_keeps_it() -> None:
    garden = FakeGarden(settings())
    until = WALL0 + timedelta(hours=2)
    garden.plan = replace(garden.plan, queue=(Queued("lawn", 5),), rain_delay_until=until)
    garden.settle()
    garden.advance(1, wall=-86400)
    garden.settle()
    assert garden.plan.rain_delay_active(garden.now())
    # The wake-up follows the wall clock: a day and two hours away now.
    assert next_wake(garden.now(), garden.plan) == 86400 + 7200
    garden.advance(1, wall=86400 + 7200)
    garden.settle()
    assert garden.ended_rain_delays == 1
    assert garden.log == [(2.0, "lawn", True)]


def test_a_late_write_counts_the_pumps_lead_from_the_real_switch() -> None:
    garden = FakeGarden(settings(pump={}))
    garden.plan = run_zone(garden.plan, garden.now(), "lawn", 10)
    now = garden.now()
    result = step(now, garden.plan)  # admitted
    assert result is not None and result.command is None
    result = step(now, result.plan)
    assert result is not None and result.command == Switch("lawn", True)
    plan = switched(result.plan, result.command, T0 + 0.25)  # the write landed 0.25 s late
    assert plan.valve("lawn").last_change == T0 + 0.25
    assert step(now, plan) is None
    assert next_wake(now, plan) == LEAD + 0.25


@pytest.mark.parametrize("supply", ["pump", "master_valve"])
def test_late_writes_shorten_neither_lead_nor_lag(supply: str) -> None:
    """Lead and lag count from when the relay really switched, not from the pass's start."""
    garden = FakeGarden(settings(pump={"type": supply}))
    # The relay that switches off first lands late; the lag must still hold from its real switch.
    garden.write_delay = {PUMP if supply == "pump" else "lawn": 0.25}
    garden.run("lawn", 10)
    garden.run_until_idle()
    pump_on, pump_off = garden.switched(PUMP, True), garden.switched(PUMP, False)
    lawn_on, lawn_off = garden.switched("lawn", True), garden.switched("lawn", False)
    if supply == "pump":  # the valve, the pump LEAD later; the pump stops, the valve LAG later
        assert pump_on - lawn_on >= LEAD
        assert lawn_off - pump_off >= LAG
    else:  # the master valve, the zone LEAD later; the zone closes, the master valve LAG later
        assert lawn_on - pump_on >= LEAD
        assert pump_off - lawn_off >= LAG


def test_next_wake_never_busy_loops() -> None:
    garden = FakeGarden(settings())
    garden.run("lawn", 10)
    garden.advance(10 - MIN_SLEEP / 10)
    assert next_wake(garden.now(), garden.plan) == MIN_SLEEP


def test_deadlines_for_the_guard_with_a_pump() -> None:
    garden = FakeGarden(settings(pump={}, max_concurrent=2))
    garden.run("lawn", 5)
    garden.run("beds", 8)
    garden.sleep()  # pump on
    due = deadlines(garden.monotonic, garden.plan)
    # A pump stops at the deadline, its valves close a lag later.
    assert dict(due.valves) == {"lawn": T0 + 5 + LAG, "beds": T0 + 8 + LAG}
    assert due.pump == T0 + 8
    garden.plan, _ = stop_zone(garden.plan, "lawn")
    assert deadlines(garden.monotonic, garden.plan).valves["lawn"] == garden.monotonic + LAG


def test_deadlines_for_the_guard_with_a_master_valve() -> None:
    garden = FakeGarden(settings(pump={"type": "master_valve"}))
    garden.run("lawn", 5)
    due = deadlines(garden.monotonic, garden.plan)
    # Waiting for the lead: the zone is off; the master valve may stay for the lead, the run
    # and its lag.
    assert dict(due.valves) == {}
    assert due.pump == T0 + LEAD + 5 + LAG
    garden.sleep()
    due = deadlines(garden.monotonic, garden.plan)
    assert dict(due.valves) == {"lawn": T0 + LEAD + 5}
    assert due.pump == T0 + LEAD + 5 + LAG
    garden.sleep()  # the zone closed: the valve waits out its lag
    assert deadlines(garden.monotonic, garden.plan) == replace(due, valves={})


def test_valves_closing_after_a_fault_hold_the_queue_and_their_deadline() -> None:
    garden = FakeGarden(settings(pump={}))
    garden.run("lawn", 10)
    garden.sleep()
    # What the controller's fail safe does: the plan dropped, the pump off, valves a lag later.
    garden.plan = replace(garden.plan, runs=(), queue=(), closing_until=garden.monotonic + LAG)
    garden.plan = switched(garden.plan, Switch(None, False), garden.monotonic)
    assert deadlines(garden.monotonic, garden.plan).valves == {"lawn": T0 + LEAD + LAG}
    garden.run("beds", 1)
    assert garden.phase("beds") is None
    assert next_wake(garden.now(), garden.plan) == LAG
    garden.plan = switched(garden.plan, Switch("lawn", False), garden.monotonic)
    garden.run_until_idle()
    assert garden.log[-2:] == [(LEAD + LAG, "beds", True), (LEAD + LAG + 1, "beds", False)]


def test_switched_on_a_plan_without_a_pump_changes_nothing() -> None:
    plan = Plan.initial(settings())
    assert switched(plan, Switch(None, True), T0) == plan


def test_the_settings_decide_the_supply_once() -> None:
    assert settings().supply is None
    assert (settings().lead, settings().lag) == (0.0, 0.0)
    assert settings(pump={}).supply is Supply.PUMP
    pump = settings(pump={"type": "master_valve"}).pump
    assert pump is not None
    assert (pump.supply, pump.name) == (Supply.MASTER_VALVE, "Master valve")


@pytest.mark.parametrize(
    ("zone", "seconds", "reason"),
    [
        ("lawn", 61, "'lawn' may run at most 60 s (the controller's max_run_seconds); 61 s"),
        ("beds", 11, "'beds' may run at most 10 s (its max_seconds); 11 s was asked"),
        ("hedge", 1, "'hedge' is already queued (position 1); stop it"),
    ],
)
def test_runs_over_a_limit_or_queued_twice_are_refused(
    zone: str, seconds: float, reason: str
) -> None:
    config = settings()
    config = replace(
        config,
        zones={
            **config.zones,
            "beds": replace(config.zones["beds"], max_seconds=10, limit_source="its max_seconds"),
        },
    )
    garden = FakeGarden(config)
    garden.run("lawn", 5)
    garden.run("hedge", 5)
    with pytest.raises(Refused, match=re.escape(reason)):
        run_zone(garden.plan, garden.now(), zone, seconds)


def test_the_answer_to_run_says_what_became_of_it() -> None:
    garden = FakeGarden(settings(pump={"type": "master_valve"}, max_run_seconds=10))
    garden.run("lawn", 5)
    assert run_answer(garden.plan, garden.now(), "lawn", 5).to_wire() == {
        "zone": "lawn",
        "seconds": 5,
        "status": "starting",
        "ends_at": None,
    }
    garden.run("beds", 5)
    assert run_answer(garden.plan, garden.now(), "beds", 5).position == 1
    garden.sleep()
    garden.advance(6)
    garden.run("lawn", 8)
    assert run_answer(garden.plan, garden.now(), "lawn", 8).to_wire() == {
        "zone": "lawn",
        "seconds": 8,
        "status": "running",
        "ends_at": "2026-06-01T05:00:11.000+00:00",
        "capped": True,
    }


def test_the_day_cap_refuses_a_zone_that_used_its_allowance() -> None:
    garden = FakeGarden(settings(max_seconds_per_day=3))
    garden.run("lawn", 3)
    garden.run_until_idle()
    with pytest.raises(Refused, match=r"'lawn' has watered its max_seconds_per_day \(3 s\) today"):
        run_zone(garden.plan, garden.now(), "lawn", 1)


# -- the controller itself on a fake clock


class FakeClock:
    def __init__(self) -> None:
        self.now = T0
        self.utc = WALL0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return self.utc


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[tuple[Any, FakeClock]]:
    clock = FakeClock()
    ctx = DeviceContext(
        pin_factory=MockFactory(pin_class=MockPWMPin),
        state_dir=tmp_path,
        mock=True,
        config_dir=tmp_path,
    )
    section = {"zone": [{"id": "lawn", "pin": 5}, {"id": "beds", "pin": 6}]}
    [device] = sprinklers.create(section, ctx, clock=clock)
    await device.start()
    try:
        yield device, clock
    finally:
        await device.stop()


async def test_the_controller_tells_time_by_its_clock_alone(
    controller: tuple[Any, FakeClock], tmp_path: Path
) -> None:
    device, clock = controller
    answer = await call(device, "run", {"zone": "lawn", "seconds": 30})
    assert answer["ends_at"] == "2026-06-01T05:00:30.000+00:00"
    clock.now += 10  # no real time passes: the remaining time is the fake clock's
    assert device.state()["zones"]["lawn"] == {
        "open": True,
        "remaining": 20.0,
        "ends_at": "2026-06-01T05:00:30.000+00:00",
    }
    # A rain delay is judged by the fake wall clock, and its end by it too.
    with pytest.raises(Refused, match="already past"):
        await call(device, "set_rain_delay", {"until": (WALL0 - timedelta(seconds=1)).isoformat()})
    until = WALL0 + timedelta(hours=1)
    await call(device, "set_rain_delay", {"until": until.isoformat()})
    state_file = tmp_path / sprinklers.STATE_FILE_NAME
    assert "rain_delay_until" in json.loads(state_file.read_text())
    clock.utc += timedelta(hours=2)
    assert await call(device, "clear_queue") == {"cleared": 0}  # any command runs a pass
    assert device.state()["rain_delay_until"] is None
    assert "rain_delay_until" not in json.loads(state_file.read_text())


def test_the_day_cap_starts_afresh_on_the_clocks_next_day(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "sprinklers.json")
    day = [date(2026, 6, 1)]
    ledger = WateringLedger(store, ["lawn"], today=lambda: day[0])
    ledger.add("lawn", 30)
    assert WateringLedger(store, ["lawn"], today=lambda: day[0]).used("lawn") == 30  # a restart
    day[0] = date(2026, 6, 2)
    assert ledger.used("lawn") == 0
    assert WateringLedger(store, ["lawn"], today=lambda: day[0]).watered(["lawn"]) == {"lawn": 0}


def test_a_zone_behind_a_master_valve_that_waits_its_interval_never_opens_first() -> None:
    garden = FakeGarden(settings(pump={"type": "master_valve"}, min_switch_interval=3))
    garden.run("lawn", 1)
    garden.run_until_idle()
    assert garden.log[-1] == (LEAD + 1 + LAG, PUMP, False)
    garden.run("beds", 1)  # the master valve switched off just now: on again 3 s later
    garden.plan = run_zone(garden.plan, garden.now(), "beds", 2)  # waiting, it takes a new time
    assert garden.phase("beds") is Phase.STARTING
    assert garden.plan.queue == ()
    wakes = 0
    while garden.sleep():
        wakes += 1
    master_on = [at for at, relay, on in garden.log if relay == PUMP and on]
    beds = [at for at, relay, _on in garden.log if relay == "beds"]
    assert master_on[1] >= LEAD + 1 + LAG + 3
    # Its lead behind the master valve, as always (it once opened in the master valve's pass).
    assert beds[0] - master_on[1] >= LEAD
    assert beds[1] - beds[0] == pytest.approx(2)
    # The wait is slept, not polled (it once woke every MIN_SLEEP until the master valve opened).
    assert wakes <= 6


def test_evolve_is_replace_without_init_and_refuses_an_unknown_field() -> None:
    plan = Plan.initial(settings(pump={}))
    moved = evolve(plan, last_close=5.0, queue=(Queued("lawn", 3),))
    assert moved == replace(plan, last_close=5.0, queue=(Queued("lawn", 3),))
    assert plan.last_close == -math.inf  # the original is untouched
    with pytest.raises(TypeError, match=r"Plan has no field \['last_clsoe'\]"):
        evolve(plan, last_clsoe=5.0)
