"""The sprinkler scheduler: pure functions of (now, plan) to the next relay command.

Nothing here reads a clock, touches a pin or keeps state: the controller (sprinklers.py) passes
``now`` in, applies the command :func:`step` returns, tells the plan when the relay really changed
(:func:`switched`), and calls :func:`step` again until it returns ``None``; then it sleeps
:func:`next_wake` seconds. Tests drive the same functions on a fake clock.

A step makes the single most urgent change due at ``now``, in the safe order: the pump stops
before a valve closes (so it never pushes against one), valves close before others open, the
queue admits a run only within ``max_concurrent``, outside a rain delay and after ``queue_delay``,
and the pump (or master valve, which opens first) starts last. The pump-or-master-valve rule is
:class:`~pi_agent.devices.sprinkler_config.Supply`, decided once in the settings. Deadlines are on
the monotonic clock; only the rain delay and the ``ends_at`` shown to clients are on the wall clock,
so a wall-clock jump never shortens or extends a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from pi_agent.devices.sprinkler_config import Supply
from pi_agent.devices.sprinkler_plan import (
    Now,
    Phase,
    Plan,
    RelayState,
    Run,
    evolve,
    watered_left,
    with_run,
)

# The controller never sleeps less than this: a deadline may be met this late, never a busy loop.
MIN_SLEEP: Final = 0.005


@dataclass(frozen=True)
class Switch:
    """Drive one relay: a zone's valve, or the pump or master valve (``zone`` None)."""

    zone: str | None
    on: bool
    opened_for: float = 0.0  # a valve closing: how long it was open, for the day's ledger


@dataclass(frozen=True)
class RainDelayEnded:
    """The rain delay is over: the controller forgets its saved end."""


Command = Switch | RainDelayEnded


@dataclass(frozen=True)
class Step:
    plan: Plan
    command: Command | None  # None: the plan changed, no relay does


@dataclass(frozen=True)
class Deadlines:
    """The latest moment (monotonic) each relay that is on must be off."""

    valves: Mapping[str, float]
    pump: float | None


def step(now: Now, plan: Plan) -> Step | None:
    """The single most urgent change due at ``now``; None when nothing is due."""
    t = now.monotonic
    settings = plan.settings
    if plan.rain_delay_until is not None and not plan.rain_delay_active(now):
        return Step(evolve(plan, rain_delay_until=None), RainDelayEnded())
    pump = plan.pump
    # Stopping the pump comes before closing a valve, so it never pushes against one.
    if pump is not None and pump.on and not _pump_wanted(plan, t):
        # From the pass's start, so that without a lag the valves close in this same pass.
        stopped = evolve(plan, pump=RelayState(False, t), pump_off_since=t)
        return Step(stopped, Switch(None, False))
    for index, run in enumerate(plan.runs):
        if run.due(t):
            close_at = t
            if settings.supply is Supply.PUMP and not any(
                other.phase is Phase.OPEN and not other.due(t) for other in plan.runs
            ):
                # The last valve stays open while the pump spins down.
                close_at = max(t, plan.pump_off_since + settings.lag)
            return Step(
                with_run(plan, index, evolve(run, phase=Phase.CLOSING, close_at=close_at)), None
            )
    for index, run in enumerate(plan.runs):
        if run.phase is Phase.CLOSING and run.close_at <= t:
            opened_for = t - run.opened_at
            watered = plan.watered
            if settings.zones[run.zone].counts_daily and opened_for > 0:
                watered = {**watered, run.zone: watered.get(run.zone, 0.0) + opened_for}
            closed = evolve(
                plan,
                runs=plan.runs[:index] + plan.runs[index + 1 :],
                valves={**plan.valves, run.zone: RelayState(False, t)},
                last_close=t,
                watered=watered,
            )
            return Step(closed, Switch(run.zone, False, opened_for=opened_for))
    for index, run in enumerate(plan.runs):
        if run.phase is Phase.STARTING and _may_open(plan, run, t):
            if settings.supply is Supply.MASTER_VALVE and pump is not None and not pump.on:
                break  # the master valve opens first (below)
            zone = settings.zones[run.zone]
            limit = min(zone.max_seconds, watered_left(plan, run.zone, t))
            seconds = min(run.seconds, limit)
            opened = evolve(
                run,
                phase=Phase.OPEN,
                opened_at=t,
                limit_at=t + limit,
                deadline=t + seconds,
                ends_at=now.wall + timedelta(seconds=seconds),
            )
            plan = with_run(plan, index, opened)
            plan = evolve(plan, valves={**plan.valves, run.zone: RelayState(True, t)})
            return Step(plan, Switch(run.zone, True))
    if _can_admit(plan, now):
        item = plan.queue[0]
        open_at = t
        if settings.supply is Supply.MASTER_VALVE and pump is not None:
            master_since = plan.pump_on_since if pump.on else t
            open_at = max(t, master_since + settings.lead)
        admitted = Run(item.zone, item.seconds, open_at=open_at)
        return Step(evolve(plan, queue=plan.queue[1:], runs=(*plan.runs, admitted)), None)
    if (
        pump is not None
        and not pump.on
        and _pump_wanted(plan, t)
        and t >= pump.last_change + settings.min_switch_interval
    ):
        return Step(evolve(plan, pump=RelayState(True, t), pump_on_since=t), Switch(None, True))
    return None


def switched(plan: Plan, command: Switch, at: float) -> Plan:
    """Record that ``command``'s relay last changed at ``at`` (monotonic).

    A write can land a little after the pass's ``now``; the pump's lead (or the zone's, behind a
    master valve) counts from when the relay really switched.
    """
    # A lag, too, counts from the real switch (a write under load lands a millisecond or more after
    # the pass's start); without a lag the next relay still follows in the same pass.
    lagging = plan.settings.lag > 0
    if command.zone is None:
        if plan.pump is None:
            return plan
        on_since = max(plan.pump_on_since, at) if command.on else plan.pump_on_since
        off_since = plan.pump_off_since
        if not command.on and lagging:
            off_since = max(off_since, at)
        return evolve(
            plan, pump=RelayState(command.on, at), pump_on_since=on_since, pump_off_since=off_since
        )
    zone = command.zone
    plan = evolve(plan, valves={**plan.valves, zone: RelayState(command.on, at)})
    if not command.on and lagging:
        plan = evolve(plan, last_close=max(plan.last_close, at))
    if command.on:
        for index, run in enumerate(plan.runs):
            if run.zone == zone and run.phase is Phase.OPEN:
                return with_run(plan, index, evolve(run, opened_at=max(run.opened_at, at)))
    return plan


def next_wake(now: Now, plan: Plan) -> float | None:
    """Seconds until something may be due (at least MIN_SLEEP); None: nothing will be."""
    t = now.monotonic
    settings = plan.settings
    pump = plan.pump
    moments: list[float] = []
    for run in plan.runs:
        if run.phase is Phase.STARTING:
            moments.append(_opens_at(plan, run))
        elif run.phase is Phase.OPEN:
            moments.append(run.deadline)
            if settings.supply is Supply.PUMP and pump is not None and not pump.on:
                moments.append(
                    max(
                        run.opened_at + settings.lead,
                        pump.last_change + settings.min_switch_interval,
                    )
                )
        else:
            moments.append(run.close_at)
    if pump is not None and pump.on and not plan.runs:
        moments.append(plan.last_close + settings.lag)
    if plan.queue and len(plan.runs) < settings.max_concurrent and not plan.rain_delay_active(now):
        moments.append(max(plan.last_close + settings.queue_delay, plan.closing_until))
    if pump is not None and not pump.on and settings.supply is Supply.MASTER_VALVE and plan.runs:
        moments.append(pump.last_change + settings.min_switch_interval)
    if plan.rain_delay_until is not None:
        moments.append(t + (plan.rain_delay_until - now.wall).total_seconds())
    if not moments:
        return None
    return max(MIN_SLEEP, min(moments) - t)


def deadlines(now: float, plan: Plan) -> Deadlines:
    """For the deadline guard: the latest moment each relay that is on must be off."""
    settings = plan.settings
    lag = settings.lag
    valves: dict[str, float] = {}
    latest = plan.last_close
    for run in plan.runs:
        if run.phase is Phase.STARTING:
            end = max(run.open_at, now) + run.seconds + settings.min_switch_interval
        elif run.phase is Phase.OPEN:
            end = now if run.stop_requested else run.deadline
        else:
            end = run.close_at
        latest = max(latest, end)
        if plan.valve(run.zone).on:
            # A pump stops at the deadline and its valves close a lag later; a master valve
            # closes a lag after its zone valves.
            valves[run.zone] = end + (lag if settings.supply is Supply.PUMP else 0.0)
    pump: float | None = None
    if plan.pump is not None and plan.pump.on:
        pump = latest + (lag if settings.supply is Supply.MASTER_VALVE else 0.0)
    if now < plan.closing_until:
        for zone, state in plan.valves.items():
            if state.on:
                valves[zone] = plan.closing_until
    return Deadlines(valves, pump)


def _pump_wanted(plan: Plan, now: float) -> bool:
    settings = plan.settings
    if settings.supply is Supply.PUMP:
        # Only behind a valve that has been open for the lead time, and not one being stopped.
        return any(
            run.phase is Phase.OPEN and not run.due(now) and run.opened_at + settings.lead <= now
            for run in plan.runs
        )
    return bool(plan.runs) or now < plan.last_close + settings.lag


def _opens_at(plan: Plan, run: Run) -> float:
    settings = plan.settings
    at = max(run.open_at, plan.valve(run.zone).last_change + settings.min_switch_interval)
    master = plan.pump
    if settings.supply is Supply.MASTER_VALVE and master is not None:
        # The zone follows the master valve by its lead, also when the master valve had to wait
        # out its switch interval after the run was admitted (open_at was counted from then).
        master_on = (
            plan.pump_on_since if master.on else master.last_change + settings.min_switch_interval
        )
        at = max(at, master_on + settings.lead)
    return at


def _may_open(plan: Plan, run: Run, now: float) -> bool:
    return now >= _opens_at(plan, run)


def _can_admit(plan: Plan, now: Now) -> bool:
    t = now.monotonic
    return (
        bool(plan.queue)
        and len(plan.runs) < plan.settings.max_concurrent
        and not plan.rain_delay_active(now)
        and t >= plan.last_close + plan.settings.queue_delay
        and t >= plan.closing_until
    )
