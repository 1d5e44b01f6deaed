"""What the sprinkler controller has planned: runs, queue, relay levels, as frozen values.

The scheduler (sprinkler_schedule.py) decides from a :class:`Plan` what to switch; the functions
here are what the controller's actions do to one, after its own checks and refusals. Nothing here
reads a clock: every moment comes in as a :class:`Now`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from pi_secure_ws_protocol.devices.sprinklers import (
    QueuedRun,
    RunAnswer,
    RunStatus,
    SprinklerState,
    ZoneState,
)

from pi_agent.devices.base import Refused
from pi_agent.devices.sprinkler_config import ControllerSettings, iso

_Value = TypeVar("_Value")
_FIELDS: dict[type, frozenset[str]] = {}


def evolve(value: _Value, **changes: Any) -> _Value:
    """``dataclasses.replace`` for the plan's frozen values, without running ``__init__`` again.

    The scheduler makes a new plan for every decision, many a pass; ``replace`` rebuilds every
    field each time and made a valve command end to end about 17 % slower. These classes have no
    ``__post_init__``, so copying the fields is all ``replace`` would do.
    """
    kind = type(value)
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = frozenset(item.name for item in fields(kind))  # type: ignore[arg-type]
    if not changes.keys() <= names:
        raise TypeError(f"{kind.__name__} has no field {sorted(changes.keys() - names)}")
    new = object.__new__(kind)
    new.__dict__.update(value.__dict__, **changes)
    return new


@dataclass(frozen=True)
class Now:
    """One moment on both clocks: ``monotonic`` for every deadline, ``wall`` (UTC) for people."""

    monotonic: float
    wall: datetime


class Phase(enum.Enum):
    STARTING = "starting"  # waiting for the master valve's lead before the zone valve opens
    OPEN = "open"  # zone valve open, deadline running
    CLOSING = "closing"  # deadline passed, valve open while the pump stops (the lag)


@dataclass(frozen=True)
class RelayState:
    """What a relay was last switched to, and when (monotonic) it last changed."""

    on: bool = False
    last_change: float = -math.inf


OFF: Final = RelayState()


@dataclass(frozen=True)
class Run:
    zone: str
    seconds: float
    phase: Phase = Phase.STARTING
    open_at: float = 0.0  # STARTING: when the valve may open
    opened_at: float = 0.0
    deadline: float = 0.0  # OPEN: when the run ends
    ends_at: datetime | None = None  # the deadline on the wall clock, for clients
    stop_requested: bool = False
    close_at: float = 0.0  # CLOSING: when the valve closes
    # OPEN: the latest deadline re-sending `run` may set (max continuous time, the day's cap).
    limit_at: float = math.inf

    def due(self, now: float) -> bool:
        return self.phase is Phase.OPEN and (self.stop_requested or self.deadline <= now)


@dataclass(frozen=True)
class Queued:
    zone: str
    seconds: float


@dataclass(frozen=True)
class Plan:
    """Everything the scheduler decides from: settings, relay levels, runs, queue, rain delay."""

    settings: ControllerSettings
    valves: Mapping[str, RelayState] = field(default_factory=dict)  # by zone id; missing: off
    pump: RelayState | None = None  # None: no pump nor master valve
    runs: tuple[Run, ...] = ()  # started runs, oldest first
    queue: tuple[Queued, ...] = ()
    last_close: float = -math.inf
    pump_on_since: float = -math.inf
    pump_off_since: float = -math.inf
    # Valves closing after the pump (stop or fault path): no run starts before this.
    closing_until: float = -math.inf
    rain_delay_until: datetime | None = None
    # Seconds each zone with a daily cap was open today in runs that have ended.
    watered: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def initial(cls, settings: ControllerSettings) -> Plan:
        """Every relay off, nothing planned."""
        return cls(settings, pump=None if settings.pump is None else OFF)

    def valve(self, zone: str) -> RelayState:
        return self.valves.get(zone, OFF)

    def run_of(self, zone: str) -> Run | None:
        return next((run for run in self.runs if run.zone == zone), None)

    def position(self, zone: str) -> int | None:
        """Where ``zone`` waits in the queue, from 1."""
        found = (index for index, item in enumerate(self.queue, start=1) if item.zone == zone)
        return next(found, None)

    def rain_delay_active(self, now: Now) -> bool:
        until = self.rain_delay_until
        return until is not None and now.wall < until


def with_run(plan: Plan, index: int, run: Run) -> Plan:
    return evolve(plan, runs=(*plan.runs[:index], run, *plan.runs[index + 1 :]))


def run_zone(plan: Plan, now: Now, zone_id: str, seconds: float) -> Plan:
    """Water ``zone_id`` for ``seconds``: queued, or a started run's timer set anew from now.

    Running again never extends a run past its limit (max continuous time, the day's cap).
    Raises Refused, with the reason, over a limit, in a rain delay or when already queued.
    """
    zone = plan.settings.zones[zone_id]
    if seconds > zone.max_seconds:
        raise Refused(
            f"zone {zone.id!r} may run at most {zone.max_seconds:g} s ({zone.limit_source}); "
            f"{seconds:g} s was asked"
        )
    if plan.rain_delay_active(now):
        raise Refused(
            f"rain delay until {iso(plan.rain_delay_until)}: zone {zone.id!r} was not "
            "started; clear the rain delay to water now"
        )
    t = now.monotonic
    if zone.counts_daily and watered_left(plan, zone.id, t) <= 0:
        raise Refused(
            f"zone {zone.id!r} has watered its max_seconds_per_day "
            f"({zone.max_seconds_per_day:g} s) today"
        )
    for index, run in enumerate(plan.runs):
        if run.zone != zone_id:
            continue
        if run.phase is Phase.STARTING:
            return with_run(plan, index, evolve(run, seconds=seconds))
        deadline = min(t + seconds, run.limit_at)
        restarted = evolve(
            run,
            seconds=seconds,
            phase=Phase.OPEN,
            stop_requested=False,
            deadline=deadline,
            ends_at=now.wall + timedelta(seconds=deadline - t),
        )
        return with_run(plan, index, restarted)
    position = plan.position(zone_id)
    if position is not None:
        raise Refused(
            f"zone {zone.id!r} is already queued (position {position}); stop it to "
            "take it out of the queue"
        )
    return evolve(plan, queue=(*plan.queue, Queued(zone_id, seconds)))


def run_answer(plan: Plan, now: Now, zone: str, seconds: float) -> RunAnswer:
    """What ``run`` answers once the plan took it (and its pass ran)."""
    active = plan.run_of(zone)
    if active is None:
        status, position = RunStatus.QUEUED, plan.position(zone)
        return RunAnswer(zone=zone, seconds=seconds, status=status, position=position)
    started = active.phase is not Phase.STARTING
    return RunAnswer(
        zone=zone,
        seconds=seconds,
        status=RunStatus.RUNNING if started else RunStatus.STARTING,
        ends_at=active.ends_at,
        # The run ends at its limit, sooner than asked.
        capped=started and active.deadline < now.monotonic + seconds,
    )


def stop_zone(plan: Plan, zone: str) -> tuple[Plan, bool]:
    """Take ``zone`` out of the queue and stop its run; True when there was one."""
    queue = tuple(item for item in plan.queue if item.zone != zone)
    stopped = len(queue) != len(plan.queue) or plan.run_of(zone) is not None
    runs = _stopping(plan.runs, lambda run: run.zone == zone)
    return evolve(plan, queue=queue, runs=runs), stopped


def stop_all(plan: Plan) -> Plan:
    return evolve(plan, queue=(), runs=_stopping(plan.runs, lambda _run: True))


def clear_queue(plan: Plan) -> tuple[Plan, int]:
    return evolve(plan, queue=()), len(plan.queue)


def _stopping(runs: tuple[Run, ...], chosen: Callable[[Run], bool]) -> tuple[Run, ...]:
    """Runs not yet open are dropped; open ones close at the next step (the pump first)."""
    kept: list[Run] = []
    for run in runs:
        if not chosen(run) or run.phase is Phase.CLOSING:
            kept.append(run)
        elif run.phase is Phase.OPEN:
            kept.append(evolve(run, stop_requested=True))
    return tuple(kept)


def watered_left(plan: Plan, zone: str, now: float) -> float:
    """Seconds ``zone`` may still be open today (a running run counts as it goes)."""
    cap = plan.settings.zones[zone].max_seconds_per_day
    if cap is None:
        return math.inf
    used = plan.watered.get(zone, 0.0)
    for run in plan.runs:
        if run.zone == zone and run.phase is not Phase.STARTING:
            used += max(0.0, now - run.opened_at)
    return cap - used


def open_for(plan: Plan, now: float) -> dict[str, float]:
    """How long each open valve of a started run has been open: what a stop or fault accounts."""
    return {
        run.zone: now - run.opened_at
        for run in plan.runs
        if run.phase is not Phase.STARTING and plan.valve(run.zone).on
    }


def state(plan: Plan, now: float, *, fault: str | None) -> SprinklerState:
    """The controller's state for clients (``plan`` with the relays' real levels)."""
    zones: dict[str, ZoneState] = {}
    for zone_id in plan.settings.zones:
        run = plan.run_of(zone_id)
        remaining: float | None = None
        ends_at: datetime | None = None
        if run is not None and run.phase is not Phase.STARTING:
            remaining = round(max(0.0, run.deadline - now), 1)
            if run.phase is Phase.CLOSING:
                remaining = 0.0
            ends_at = run.ends_at
        zones[zone_id] = ZoneState(
            open=plan.valve(zone_id).on, remaining=remaining, ends_at=ends_at
        )
    return SprinklerState(
        zones=zones,
        queue=tuple(QueuedRun(zone=item.zone, seconds=item.seconds) for item in plan.queue),
        running=tuple(run.zone for run in plan.runs),
        pump=None if plan.pump is None else plan.pump.on,
        rain_delay_until=plan.rain_delay_until,
        fault=fault,
    )
