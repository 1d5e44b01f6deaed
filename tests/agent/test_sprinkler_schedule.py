"""The sprinkler scheduler on a fake clock: exact moments, no sleeping, no pins.

``Garden`` runs what the controller runs (pass after pass of ``step`` until it settles, then sleep
``next_wake``) on a clock the test moves, and logs every relay command with its moment. The real
controller on real pins is tested in test_sprinklers.py and over the wire in test_outputs_off.py.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pi_agent.devices.base import Refused
from pi_agent.devices.sprinkler_config import ControllerSettings, Supply
from pi_agent.devices.sprinkler_plan import (
    Now,
    Phase,
    Plan,
    Queued,
    clear_queue,
    open_for,
    run_answer,
    run_zone,
    stop_all,
    stop_zone,
    watered_left,
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


class Garden:
    """The controller's loop on a fake clock; ``log`` holds (moment, relay, on) from T0."""

    def __init__(self, config: ControllerSettings) -> None:
        self.plan = Plan.initial(config)
        self.monotonic = T0
        self.wall = WALL0
        self.log: list[tuple[float, str, bool]] = []
        self.ended_rain_delays = 0
        self.opened_for: dict[str, float] = {}

    def now(self) -> Now:
        return Now(self.monotonic, self.wall)

    def advance(self, seconds: float, *, wall: float | None = None) -> None:
        """Move both clocks (the wall clock by ``wall`` instead, to jump it)."""
        self.monotonic += seconds
        self.wall += timedelta(seconds=seconds if wall is None else wall)

    def run(self, zone: str, seconds: float) -> None:
        self.plan = run_zone(self.plan, self.now(), zone, seconds)
        self.settle()

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
                self.log.append((self.monotonic - T0, command.zone or PUMP, command.on))
                self.plan = switched(self.plan, command, self.monotonic)
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
    garden = Garden(settings())
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
    garden = Garden(settings(pump={}))
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
    garden = Garden(settings(pump={"type": "master_valve"}))
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
    garden = Garden(settings(pump={"type": "master_valve"}))
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
    garden = Garden(settings(pump={}))
    garden.run("lawn", LEAD / 2)
    garden.run_until_idle()
    assert garden.log == [(0.0, "lawn", True), (LEAD / 2, "lawn", False)]


def test_queued_runs_start_in_fifo_order_one_at_a_time() -> None:
    garden = Garden(settings())
    for zone in ("hedge", "lawn", "beds"):
        garden.run(zone, 3)
    assert [item.zone for item in garden.plan.queue] == ["lawn", "beds"]
    assert garden.plan.position("beds") == 2
    garden.run_until_idle()
    assert garden.log == [
        (0.0, "hedge", True),
        (3.0, "hedge", False),
        (3.0, "lawn", True),
        (6.0, "lawn", False),
        (6.0, "beds", True),
        (9.0, "beds", False),
    ]


def test_max_concurrent_fills_a_free_slot_from_the_queue() -> None:
    garden = Garden(settings(max_concurrent=2))
    garden.run("lawn", 2)
    garden.run("beds", 3)
    garden.run("hedge", 1)
    assert [run.zone for run in garden.plan.runs] == ["lawn", "beds"]
    garden.run_until_idle()
    assert garden.log == [
        (0.0, "lawn", True),
        (0.0, "beds", True),
        (2.0, "lawn", False),
        (2.0, "hedge", True),
        (3.0, "beds", False),
        (3.0, "hedge", False),
    ]


def test_the_pump_keeps_running_between_zones_of_two_slots() -> None:
    garden = Garden(settings(pump={}, max_concurrent=2))
    garden.run("lawn", 5)
    garden.run("beds", 8)
    garden.run_until_idle()
    assert garden.log == [
        (0.0, "lawn", True),
        (0.0, "beds", True),
        (LEAD, PUMP, True),
        (5.0, "lawn", False),  # another valve is still open: no lag for this one
        (8.0, PUMP, False),
        (8.0 + LAG, "beds", False),
    ]


def test_queue_delay_pauses_between_queued_zones() -> None:
    garden = Garden(settings(queue_delay=4))
    garden.run("lawn", 1)
    garden.run("beds", 1)
    garden.run_until_idle()
    assert garden.log == [
        (0.0, "lawn", True),
        (1.0, "lawn", False),
        (5.0, "beds", True),
        (6.0, "beds", False),
    ]


def test_min_switch_interval_delays_only_switching_on() -> None:
    garden = Garden(settings(min_switch_interval=3))
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
    garden = Garden(settings(pump={}, max_concurrent=2))
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
    garden = Garden(settings(pump={"type": "master_valve"}))
    garden.run("lawn", 5)
    assert garden.phase("lawn") is Phase.STARTING
    garden.plan, stopped = stop_zone(garden.plan, "lawn")
    assert stopped
    garden.settle()
    # No zone valve opened behind it: the master valve closes at once, with no lag.
    assert garden.log == [(0.0, PUMP, True), (0.0, PUMP, False)]
    assert next_wake(garden.now(), garden.plan) is None


def test_running_again_restarts_the_timer_within_the_zones_cap() -> None:
    garden = Garden(settings(max_run_seconds=10))
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
    garden = Garden(settings(pump={}))
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
    garden = Garden(settings(max_seconds_per_day=10))
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
    garden = Garden(settings())
    garden.run("lawn", 4)
    garden.run_until_idle()
    assert garden.plan.watered == {}
    assert watered_left(garden.plan, "lawn", garden.monotonic) == float("inf")


def test_rain_delay_holds_the_queue_and_ends_by_the_wall_clock() -> None:
    garden = Garden(settings())
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
    garden = Garden(settings(pump={}))
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
    garden = Garden(settings())
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
    garden = Garden(settings(pump={}))
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


def test_next_wake_never_busy_loops() -> None:
    garden = Garden(settings())
    garden.run("lawn", 10)
    garden.advance(10 - MIN_SLEEP / 10)
    assert next_wake(garden.now(), garden.plan) == MIN_SLEEP


def test_deadlines_for_the_guard_with_a_pump() -> None:
    garden = Garden(settings(pump={}, max_concurrent=2))
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
    garden = Garden(settings(pump={"type": "master_valve"}))
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
    garden = Garden(settings(pump={}))
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
    garden = Garden(config)
    garden.run("lawn", 5)
    garden.run("hedge", 5)
    with pytest.raises(Refused, match=re.escape(reason)):
        run_zone(garden.plan, garden.now(), zone, seconds)


def test_the_answer_to_run_says_what_became_of_it() -> None:
    garden = Garden(settings(pump={"type": "master_valve"}, max_run_seconds=10))
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
    garden = Garden(settings(max_seconds_per_day=3))
    garden.run("lawn", 3)
    garden.run_until_idle()
    with pytest.raises(Refused, match=r"'lawn' has watered its max_seconds_per_day \(3 s\) today"):
        run_zone(garden.plan, garden.now(), "lawn", 1)
