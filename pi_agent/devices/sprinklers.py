"""The fail-safe sprinkler controller: zone valves, an optional pump or master valve, a FIFO queue.

One device, ``sprinklers``, owns every zone relay so it can enforce ``max_concurrent`` and the
pump sequencing. All relay writes happen in one synchronous scheduling pass (``_advance``), run by
the action handlers and by a supervisor task that sleeps until the next deadline on the monotonic
clock. So a zone turns off on time with no client connected, and any exception inside a pass
switches every relay off (fail safe) before it is reported.

Pump and master valve (``[sprinklers.pump]``, ``type``):

- ``"pump"``: a pump must never run against closed valves (dead-heading). The zone valve opens
  first and the pump starts ``lead`` seconds later; at the end the pump stops first and the last
  valve closes ``lag`` seconds later, while the pump spins down.
- ``"master_valve"``: the master valve opens first and the zone valve ``lead`` seconds later; at the
  end the zone valve closes first and the master valve ``lag`` seconds after the last one.

Either way ``lead`` is the gap between the two relays switching on and ``lag`` the gap between
them switching off; the relay runs while any zone runs. A zone's run time counts from its valve
opening. ``queue_delay`` is the pause between a valve closing and the next queued zone opening.

Limits that repetition cannot extend: re-sending ``run`` to an open zone sets its timer anew but
never past ``max_seconds`` of continuous opening (nor past the day's ``max_seconds_per_day``, when
set, which is counted across runs and restarts); a relay switches on no sooner than
``min_switch_interval`` after its last change, so clients fighting over a zone cannot make it
chatter (switching off is never delayed). On stop and on a fault the pump (or master valve) goes
off first and the valves ``lag`` seconds later. A ``DeadlineGuard`` thread (relays.py) holds every
relay's deadline and switches everything off if the event loop misses one.

While a rain delay is set, ``run`` is refused with the reason and queued runs wait in the queue;
zones already running finish their run. The rain delay is kept in ``STATE_DIR/sprinklers.json`` so
a restart does not forget it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import voluptuous as vol

from pi_agent.devices.base import (
    Action,
    ActionResult,
    CallContext,
    Device,
    DeviceContext,
    DeviceError,
    Refused,
)
from pi_agent.devices.gpio import bcm_pin, boolean, build_output, display_name, seconds, slug
from pi_agent.devices.relays import (
    DeadlineGuard,
    Relay,
    RelayError,
    switch_all_off,
)
from pi_agent.devices.watering_ledger import WateringLedger
from pi_agent.state_store import StateStore

_LOGGER = logging.getLogger(__name__)

CONFIG_KEY: Final = "sprinklers"
DEVICE_ID: Final = "sprinklers"
STATE_FILE_NAME: Final = "sprinklers.json"
_RAIN_DELAY_KEY: Final = "rain_delay_until"
PUMP_TYPES: Final = ("pump", "master_valve")
MAX_ZONES: Final = 32
# One day: longer than any sensible run, short enough to catch a typo of minutes for seconds.
LONGEST_RUN: Final = 86400.0
DEFAULT_RUN: Final = 600.0
# The supervisor never sleeps less than this: a deadline may be met this late, never a busy loop.
_MIN_SLEEP: Final = 0.005
# A pass settles in a handful of steps; more means a scheduling bug, which the fail safe handles.
_MAX_STEPS_PER_PASS: Final = 1000


def _whole_number(minimum: int, maximum: int) -> Any:
    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid(f"must be a whole number {minimum}-{maximum}, got {value!r}")
        if not minimum <= value <= maximum:
            raise vol.Invalid(f"must be {minimum}-{maximum}, got {value}")
        return value

    return validate


_PUMP_SCHEMA: Final = vol.Schema(
    {
        vol.Required("pin"): bcm_pin,
        vol.Optional("name"): display_name,
        vol.Optional("type", default="pump"): vol.In(
            PUMP_TYPES, msg=f"must be one of: {', '.join(PUMP_TYPES)}"
        ),
        vol.Optional("active_high", default=True): boolean,
        vol.Optional("lead", default=1.0): seconds(0.0, 60.0),
        vol.Optional("lag", default=1.0): seconds(0.0, 60.0),
    }
)

_ZONE_SCHEMA: Final = vol.Schema(
    {
        vol.Required("id"): slug,
        vol.Optional("name"): display_name,
        vol.Required("pin"): bcm_pin,
        vol.Optional("default_seconds"): seconds(0.0, LONGEST_RUN, min_included=False),
        vol.Optional("max_seconds"): seconds(0.0, LONGEST_RUN, min_included=False),
        vol.Optional("max_seconds_per_day"): seconds(0.0, LONGEST_RUN, min_included=False),
        vol.Optional("active_high", default=True): boolean,
    }
)


def _check_controller(section: dict[str, Any]) -> dict[str, Any]:
    """Cross-field rules: unique zone ids, and run times within the global cap."""
    global_max = section["max_run_seconds"]
    seen: set[str] = set()
    for index, zone in enumerate(section["zone"]):
        if zone["id"] in seen:
            raise vol.Invalid(
                f"id {zone['id']!r} is used by another zone", path=["zone", index, "id"]
            )
        seen.add(zone["id"])
        zone.setdefault("name", zone["id"])
        zone_max = zone.get("max_seconds", global_max)
        if zone_max > global_max:
            raise vol.Invalid(
                f"{zone_max:g} is above max_run_seconds ({global_max:g})",
                path=["zone", index, "max_seconds"],
            )
        zone.setdefault("default_seconds", min(DEFAULT_RUN, zone_max))
        if zone["default_seconds"] > zone_max:
            limit = "this zone's max_seconds" if "max_seconds" in zone else "max_run_seconds"
            raise vol.Invalid(
                f"{zone['default_seconds']:g} is above {limit} ({zone_max:g})",
                path=["zone", index, "default_seconds"],
            )
    pump = section.get("pump")
    if pump is not None:
        pump.setdefault("name", "Pump" if pump["type"] == "pump" else "Master valve")
    return section


CONFIG_SCHEMA: Final = vol.Schema(
    vol.All(
        {
            vol.Optional("max_concurrent", default=1): _whole_number(1, MAX_ZONES),
            vol.Optional("max_run_seconds", default=3600.0): seconds(
                0.0, LONGEST_RUN, min_included=False
            ),
            vol.Optional("queue_delay", default=0.0): seconds(0.0, 3600.0),
            # Two clients fighting over a zone cannot make its relay chatter: a relay switches
            # on no sooner than this after its last change (off is never delayed).
            vol.Optional("min_switch_interval", default=1.0): seconds(0.0, 60.0),
            vol.Optional("max_seconds_per_day"): seconds(0.0, LONGEST_RUN, min_included=False),
            vol.Optional("pump"): _PUMP_SCHEMA,
            vol.Required("zone"): vol.All(
                [_ZONE_SCHEMA],
                vol.Length(
                    min=1,
                    max=MAX_ZONES,
                    msg=f"needs 1-{MAX_ZONES} [[sprinklers.zone]] tables",
                ),
            ),
        },
        _check_controller,
    )
)


def used_pins(section: Mapping[str, Any]) -> list[tuple[str, int]]:
    pins = [
        (f"sprinklers.zone[{index}].pin", zone["pin"])
        for index, zone in enumerate(section.get("zone", []))
    ]
    if section.get("pump") is not None:
        pins.append(("sprinklers.pump.pin", section["pump"]["pin"]))
    return pins


def create(section: Mapping[str, Any], ctx: DeviceContext) -> list[Device]:
    """Build the controller with every relay off."""
    config = CONFIG_SCHEMA(dict(section))  # idempotent; fills the defaults of a raw section
    return [SprinklerController(config, ctx.pin_factory, ctx.state_dir / STATE_FILE_NAME)]


@dataclass(frozen=True)
class _Zone:
    id: str
    name: str
    default_seconds: float
    max_seconds: float
    # Says which limit max_seconds comes from, for the refusal message.
    limit_source: str
    max_seconds_per_day: float | None
    relay: Relay


class _Phase(enum.Enum):
    STARTING = "starting"  # waiting for the master valve's lead before the zone valve opens
    OPEN = "open"  # zone valve open, deadline running
    CLOSING = "closing"  # deadline passed, valve open while the pump stops (the lag)


@dataclass
class _Run:
    zone: _Zone
    seconds: float
    phase: _Phase = _Phase.STARTING
    open_at: float = 0.0  # STARTING: when the valve may open
    opened_at: float = 0.0
    deadline: float = 0.0  # OPEN: when the run ends
    ends_at: datetime | None = None  # the deadline on the wall clock, for clients
    stop_requested: bool = False
    close_at: float = 0.0  # CLOSING: when the valve closes
    # OPEN: the latest deadline re-sending `run` may set (max continuous time, the day's cap).
    limit_at: float = math.inf

    def due(self, now: float) -> bool:
        return self.phase is _Phase.OPEN and (self.stop_requested or self.deadline <= now)


@dataclass(frozen=True)
class _Queued:
    zone: _Zone
    seconds: float


def _parse_until(value: Any) -> datetime:
    """An ISO 8601 date-time with a time zone, or seconds since the epoch."""
    if isinstance(value, bool):
        raise vol.Invalid("must be an ISO 8601 date-time with a time zone, or epoch seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise vol.Invalid("must be a finite number of epoch seconds")
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError) as err:
            raise vol.Invalid(f"epoch seconds out of range: {value!r}") from err
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as err:
            raise vol.Invalid(f"not an ISO 8601 date-time: {value!r}") from err
        if parsed.tzinfo is None:
            raise vol.Invalid(
                f"{value!r} has no time zone; add one, e.g. 2025-06-01T06:00:00+02:00 or ...Z"
            )
        return parsed.astimezone(UTC)
    raise vol.Invalid("must be an ISO 8601 date-time with a time zone, or epoch seconds")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds")


class SprinklerController(Device):
    """Every zone, the pump, the queue and the rain delay, behind one device."""

    kind = "sprinkler_controller"
    stop_rank = 0

    def __init__(self, config: Mapping[str, Any], pin_factory: Any, state_file: Path) -> None:
        super().__init__(DEVICE_ID, "Sprinklers")
        self.max_concurrent: int = config["max_concurrent"]
        self.max_run_seconds: float = config["max_run_seconds"]
        self.queue_delay: float = config["queue_delay"]
        self.min_switch_interval: float = config["min_switch_interval"]
        self._relay_lock = threading.Lock()
        self._zones: dict[str, _Zone] = {}
        self._pump: Relay | None = None
        self._pump_type = "pump"
        self._lead = 0.0
        self._lag = 0.0
        relays: list[Relay] = []
        # Every relay is built (driven to its inactive level) before any state is read.
        try:
            pump = config.get("pump")
            if pump is not None:
                self._pump = self._build_relay(
                    pin_factory, pump, "sprinklers.pump.pin", self._relay_lock
                )
                relays.append(self._pump)
                self._pump_type = pump["type"]
                self._lead = pump["lead"]
                self._lag = pump["lag"]
            for index, zone in enumerate(config["zone"]):
                relay = self._build_relay(
                    pin_factory, zone, f"sprinklers.zone[{index}].pin", self._relay_lock
                )
                relays.append(relay)
                own_max = zone.get("max_seconds")
                self._zones[zone["id"]] = _Zone(
                    id=zone["id"],
                    name=zone["name"],
                    default_seconds=zone["default_seconds"],
                    max_seconds=own_max if own_max is not None else self.max_run_seconds,
                    limit_source="its max_seconds"
                    if own_max is not None
                    else "the controller's max_run_seconds",
                    max_seconds_per_day=zone.get(
                        "max_seconds_per_day", config.get("max_seconds_per_day")
                    ),
                    relay=relay,
                )
        except BaseException:
            for relay in relays:
                relay.hold()
            raise
        self._store = StateStore(state_file)
        self._guard = DeadlineGuard(
            self._pump, [zone.relay for zone in self._zones.values()], self._lag
        )
        self._closing_until = -math.inf  # valves closing after the pump (fault path): no new run
        self._valves_timer: asyncio.TimerHandle | None = None
        self._ledger = WateringLedger(self._store, self._zones)
        self._runs: list[_Run] = []  # started runs, oldest first
        self._queue: deque[_Queued] = deque()
        self._last_close = -math.inf
        self._pump_on_since = -math.inf
        self._pump_off_since = -math.inf
        self._rain_delay_until = self._load_rain_delay()
        self._fault: str | None = None
        self._dirty = False
        self._wake: asyncio.Event | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._actions = self._build_actions()

    @staticmethod
    def _build_relay(
        pin_factory: Any, config: Mapping[str, Any], key: str, lock: threading.Lock
    ) -> Relay:
        output = build_output(
            pin_factory, config["pin"], key=key, active_high=config["active_high"]
        )
        return Relay(config["name"], config["pin"], output, lock)

    def _relays(self) -> list[Relay]:
        """The pump first: every "all off" switches it before the valves."""
        return ([self._pump] if self._pump is not None else []) + [
            zone.relay for zone in self._zones.values()
        ]

    def _build_actions(self) -> dict[str, Action]:
        zone_ids = sorted(self._zones)
        zone = vol.In(zone_ids, msg=f"unknown zone; expected one of: {', '.join(zone_ids)}")
        run_seconds = seconds(0.0, LONGEST_RUN, min_included=False)
        actions = (
            Action(
                "run",
                self._run,
                vol.Schema({vol.Required("zone"): zone, vol.Optional("seconds"): run_seconds}),
            ),
            Action("stop", self._stop_zone, vol.Schema({vol.Required("zone"): zone})),
            Action("stop_all", self._stop_all),
            Action("clear_queue", self._clear_queue),
            Action(
                "set_rain_delay",
                self._set_rain_delay,
                vol.Schema({vol.Required("until"): _parse_until}),
            ),
            Action("clear_rain_delay", self._clear_rain_delay),
        )
        return {action.name: action for action in actions}

    # -- Device interface

    def capabilities(self) -> dict[str, Any]:
        return {
            "zones": [
                {
                    "id": zone.id,
                    "name": zone.name,
                    "default_seconds": zone.default_seconds,
                    "max_seconds": zone.max_seconds,
                }
                for zone in self._zones.values()
            ],
            "max_concurrent": self.max_concurrent,
            "max_run_seconds": self.max_run_seconds,
            "has_pump": self._pump is not None,
        }

    def state(self) -> dict[str, Any]:
        now = time.monotonic()
        runs = {run.zone.id: run for run in self._runs}
        zones: dict[str, Any] = {}
        for zone in self._zones.values():
            run = runs.get(zone.id)
            remaining: float | None = None
            ends_at: datetime | None = None
            if run is not None and run.phase is not _Phase.STARTING:
                remaining = round(max(0.0, run.deadline - now), 1)
                if run.phase is _Phase.CLOSING:
                    remaining = 0.0
                ends_at = run.ends_at
            zones[zone.id] = {
                "open": zone.relay.on,
                "remaining": remaining,
                "ends_at": _iso(ends_at),
            }
        return {
            "zones": zones,
            "queue": [{"zone": item.zone.id, "seconds": item.seconds} for item in self._queue],
            "running": [run.zone.id for run in self._runs],
            "pump": None if self._pump is None else self._pump.on,
            "rain_delay_until": _iso(self._rain_delay_until),
            "fault": self._fault,
        }

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    async def start(self) -> None:
        if self._supervisor is not None or self._stopping:
            return
        self._wake = asyncio.Event()
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(), name="sprinkler supervisor"
        )
        self._supervisor.add_done_callback(self._supervisor_ended)
        self._guard.start()

    async def stop(self) -> None:
        """The pump off at once, the valves after its lag, every pin held at its inactive level.

        Never raises. Nothing before the last valve is closed waits for anything but the lag.
        """
        already, self._stopping = self._stopping, True
        if already:
            return
        now = time.monotonic()
        self._account_open_runs(now)
        self._runs.clear()
        self._queue.clear()
        pump_was_on = self._pump is not None and self._pump.on
        failures = [] if self._pump is None else switch_all_off([self._pump])
        zones = [zone.relay for zone in self._zones.values()]
        if pump_was_on and self._lag > 0 and any(relay.on for relay in zones):
            # The guard still holds the valves to the lag if this task is never resumed.
            self._guard.publish({relay: now + self._lag for relay in zones if relay.on})
            try:
                await asyncio.sleep(self._lag)
            finally:  # cancelled too: the valves close now rather than never
                failures += switch_all_off(zones)
        failures += switch_all_off(zones)
        self._guard.stop()
        for relay in self._relays():
            relay.hold()
        for failure in failures:
            _LOGGER.error("sprinklers: %s", failure)
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        self._store.flush()
        self.notify_state()

    # -- actions

    async def _run(self, params: dict[str, Any], _call: CallContext) -> ActionResult:
        self._check_running()
        zone = self._zones[params["zone"]]
        run_seconds: float = params.get("seconds", zone.default_seconds)
        if run_seconds > zone.max_seconds:
            raise Refused(
                f"zone {zone.id!r} may run at most {zone.max_seconds:g} s ({zone.limit_source}); "
                f"{run_seconds:g} s was asked"
            )
        if self._rain_delay_active():
            raise Refused(
                f"rain delay until {_iso(self._rain_delay_until)}: zone {zone.id!r} was not "
                "started; clear the rain delay to water now"
            )
        now = time.monotonic()
        active = next((run for run in self._runs if run.zone is zone), None)
        if zone.max_seconds_per_day is not None and self._watered_left(zone, now) <= 0:
            raise Refused(
                f"zone {zone.id!r} has watered its max_seconds_per_day "
                f"({zone.max_seconds_per_day:g} s) today"
            )
        if active is not None:
            # Running again means "water for this long from now", but never past the run's
            # limit: max_seconds of continuous opening, and the day's allowance.
            active.seconds = run_seconds
            if active.phase is not _Phase.STARTING:
                active.phase = _Phase.OPEN
                active.stop_requested = False
                self._set_deadline(active, min(now + run_seconds, active.limit_at), now)
        else:
            for position, item in enumerate(self._queue, start=1):
                if item.zone is zone:
                    raise Refused(
                        f"zone {zone.id!r} is already queued (position {position}); stop it to "
                        "take it out of the queue"
                    )
            self._queue.append(_Queued(zone, run_seconds))
        self._fault = None
        self._changed()
        active = next((run for run in self._runs if run.zone is zone), None)
        result: dict[str, Any] = {"zone": zone.id, "seconds": run_seconds}
        if active is not None:
            result["status"] = "starting" if active.phase is _Phase.STARTING else "running"
            result["ends_at"] = _iso(active.ends_at)
            if active.phase is not _Phase.STARTING and active.deadline < now + run_seconds:
                result["capped"] = True  # the run ends at its limit, sooner than asked
        else:
            result["status"] = "queued"
            result["position"] = 1 + next(
                index for index, item in enumerate(self._queue) if item.zone is zone
            )
        return result

    async def _stop_zone(self, params: dict[str, Any], _call: CallContext) -> ActionResult:
        self._check_running()
        zone = self._zones[params["zone"]]
        queued = [item for item in self._queue if item.zone is zone]
        for item in queued:
            self._queue.remove(item)
        stopped = bool(queued)
        for run in list(self._runs):
            if run.zone is not zone:
                continue
            stopped = True
            if run.phase is _Phase.STARTING:
                self._runs.remove(run)
            elif run.phase is _Phase.OPEN:
                run.stop_requested = True
        self._changed()
        return {"zone": zone.id, "stopped": stopped}

    async def _stop_all(self, _params: dict[str, Any], _call: CallContext) -> ActionResult:
        self._check_running()
        self._queue.clear()
        for run in list(self._runs):
            if run.phase is _Phase.STARTING:
                self._runs.remove(run)
            elif run.phase is _Phase.OPEN:
                run.stop_requested = True
        self._changed()
        return None

    async def _clear_queue(self, _params: dict[str, Any], _call: CallContext) -> ActionResult:
        self._check_running()
        cleared = len(self._queue)
        self._queue.clear()
        self._changed()
        return {"cleared": cleared}

    async def _set_rain_delay(self, params: dict[str, Any], _call: CallContext) -> ActionResult:
        self._check_running()
        until: datetime = params["until"]
        if until <= datetime.now(UTC):
            raise Refused(f"the rain delay end {_iso(until)} is already past")
        self._rain_delay_until = until
        self._save_rain_delay()
        self._changed()
        return {"rain_delay_until": _iso(until), "queued_runs_waiting": len(self._queue)}

    async def _clear_rain_delay(self, _params: dict[str, Any], _call: CallContext) -> ActionResult:
        self._check_running()
        self._rain_delay_until = None
        self._save_rain_delay()
        self._changed()
        return None

    def _check_running(self) -> None:
        if self._stopping:
            raise Refused("the sprinkler controller is shutting down")
        if self._supervisor is None:
            raise DeviceError("the sprinkler controller is not running")

    def _changed(self) -> None:
        """After a command: apply it now and let the supervisor re-plan its next wake-up."""
        self._dirty = True
        self._advance()
        if self._wake is not None:
            self._wake.set()

    # -- scheduling

    async def _supervise(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(DeviceError):  # every relay is off already, and it is logged
                self._advance()
            self._publish_deadlines(time.monotonic())
            try:
                timeout = self._seconds_to_next_event(time.monotonic())
            except Exception as err:
                self._fail_safe(err)
                timeout = None
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the cancel that
            # stop() sends when the event is set at the same moment, and stop() would hang.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()

    def _supervisor_ended(self, task: asyncio.Task[None]) -> None:
        if self._stopping:
            return
        # Only stop() may end the supervisor; without it no deadline is enforced, so close all.
        self._runs.clear()
        self._queue.clear()
        self._all_off()
        reason = "cancelled" if task.cancelled() else repr(task.exception())
        _LOGGER.error("sprinkler supervisor ended (%s); every zone was switched off", reason)
        self._supervisor = None
        self._fault = f"the scheduler stopped ({reason}); every zone was switched off"
        self.notify_state()

    def _advance(self) -> None:
        """Apply everything that is due now: one pass, relay writes in a safe order.

        Any exception switches the pump and every zone off and is raised as ``DeviceError``.
        """
        if self._stopping:
            return
        try:
            now = time.monotonic()
            if self._guard.tripped is not None:
                # The guard switched everything off while this loop was stuck: drop the plan
                # the relays no longer follow, then let them switch on again.
                self._runs.clear()
                self._queue.clear()
                reason = self._guard.acknowledge()
                self._fault = (
                    f"the event loop stalled and {reason}; the deadline guard switched every "
                    "zone and the pump off"
                )
                self._dirty = True
            for _ in range(_MAX_STEPS_PER_PASS):
                if not self._step(now):
                    break
                self._dirty = True
            else:
                raise RuntimeError("the scheduling pass did not settle")
        except Exception as err:
            self._fail_safe(err)
            raise DeviceError(f"{err}; every zone and the pump were switched off") from err
        finally:
            self._publish_deadlines(time.monotonic())
            if self._dirty:
                self._dirty = False
                self.notify_state()

    def _step(self, now: float) -> bool:
        """Make the single most urgent change due at ``now``; False when nothing is due."""
        if self._rain_delay_until is not None and not self._rain_delay_active():
            self._rain_delay_until = None
            self._save_rain_delay()
            return True
        pump = self._pump
        # Stopping the pump comes before closing a valve, so it never pushes against one.
        if pump is not None and pump.on and not self._pump_wanted(now):
            pump.switch(False)
            # From the pass's start, so that without a lag the valves close in this same pass.
            self._pump_off_since = now
            return True
        for run in self._runs:
            if run.due(now):
                run.phase = _Phase.CLOSING
                run.close_at = now
                if self._pump_type == "pump" and not any(
                    other.phase is _Phase.OPEN and not other.due(now) for other in self._runs
                ):
                    # The last valve stays open while the pump spins down.
                    run.close_at = max(now, self._pump_off_since + self._lag)
                return True
        for run in self._runs:
            if run.phase is _Phase.CLOSING and run.close_at <= now:
                run.zone.relay.switch(False)
                self._runs.remove(run)
                self._last_close = now
                self._account(run.zone, now - run.opened_at, now)
                return True
        for run in self._runs:
            if run.phase is _Phase.STARTING and self._may_open(run, now):
                if self._pump_type == "master_valve" and pump is not None and not pump.on:
                    break  # the master valve opens first (below)
                run.zone.relay.switch(True)
                run.phase = _Phase.OPEN
                # The pump's lead counts from when the valve really opened: earlier steps of
                # this pass may have taken a while since ``now``.
                run.opened_at = max(now, run.zone.relay.last_change)
                limit = run.zone.max_seconds
                if run.zone.max_seconds_per_day is not None:
                    limit = min(limit, self._watered_left(run.zone, now))
                run.limit_at = now + limit
                self._set_deadline(run, now + min(run.seconds, limit), now)
                return True
        if self._can_admit(now):
            item = self._queue.popleft()
            run = _Run(item.zone, item.seconds, open_at=now)
            if self._pump_type == "master_valve" and pump is not None:
                master_since = self._pump_on_since if pump.on else now
                run.open_at = max(now, master_since + self._lead)
            self._runs.append(run)
            return True
        if (
            pump is not None
            and not pump.on
            and self._pump_wanted(now)
            and now >= pump.last_change + self.min_switch_interval
        ):
            pump.switch(True)
            self._pump_on_since = max(now, pump.last_change)
            return True
        return False

    def _pump_wanted(self, now: float) -> bool:
        if self._pump_type == "pump":
            # Only behind a valve that has been open for the lead time, and not one being stopped.
            return any(
                run.phase is _Phase.OPEN and not run.due(now) and run.opened_at + self._lead <= now
                for run in self._runs
            )
        return bool(self._runs) or now < self._last_close + self._lag

    def _may_open(self, run: _Run, now: float) -> bool:
        return now >= max(run.open_at, run.zone.relay.last_change + self.min_switch_interval)

    def _can_admit(self, now: float) -> bool:
        return (
            bool(self._queue)
            and len(self._runs) < self.max_concurrent
            and not self._rain_delay_active()
            and now >= self._last_close + self.queue_delay
            and now >= self._closing_until
        )

    def _seconds_to_next_event(self, now: float) -> float | None:
        moments: list[float] = []
        for run in self._runs:
            if run.phase is _Phase.STARTING:
                moments.append(
                    max(run.open_at, run.zone.relay.last_change + self.min_switch_interval)
                )
            elif run.phase is _Phase.OPEN:
                moments.append(run.deadline)
                if self._pump_type == "pump" and self._pump is not None and not self._pump.on:
                    moments.append(
                        max(
                            run.opened_at + self._lead,
                            self._pump.last_change + self.min_switch_interval,
                        )
                    )
            else:
                moments.append(run.close_at)
        if self._pump is not None and self._pump.on and not self._runs:
            moments.append(self._last_close + self._lag)
        if self._queue and len(self._runs) < self.max_concurrent and not self._rain_delay_active():
            moments.append(max(self._last_close + self.queue_delay, self._closing_until))
        pump = self._pump
        if pump is not None and not pump.on and self._pump_type == "master_valve" and self._runs:
            moments.append(pump.last_change + self.min_switch_interval)
        if self._rain_delay_until is not None:
            left = (self._rain_delay_until - datetime.now(UTC)).total_seconds()
            moments.append(now + left)
        if not moments:
            return None
        return max(_MIN_SLEEP, min(moments) - now)

    def _set_deadline(self, run: _Run, deadline: float, now: float) -> None:
        run.deadline = deadline
        run.ends_at = datetime.now(UTC) + timedelta(seconds=deadline - now)

    def _rain_delay_active(self) -> bool:
        until = self._rain_delay_until
        return until is not None and datetime.now(UTC) < until

    # -- fail safe

    def _fail_safe(self, err: BaseException) -> None:
        # Off first, the log after: a slow log handler must not keep a valve open.
        now = time.monotonic()
        self._account_open_runs(now)
        self._runs.clear()
        self._queue.clear()
        failures = self._all_off()
        if isinstance(err, RelayError):
            _LOGGER.error("sprinklers: %s; every zone and the pump were switched off", err)
        else:
            _LOGGER.error(
                "sprinklers: scheduling failed; every zone and the pump were switched off",
                exc_info=err,
            )
        for failure in failures:
            _LOGGER.error("sprinklers: %s", failure)
        self._fault = f"{err}; every zone and the pump were switched off"
        if failures:
            self._fault += " but: " + "; ".join(failures)
        self._dirty = True

    def _all_off(self) -> list[str]:
        """The pump (or master valve) off now, the valves after its lag if it was on (at once
        otherwise); one failing relay does not keep the others on. Returns the failures."""
        pump = self._pump
        pump_was_on = pump is not None and pump.on
        failures = [] if pump is None else switch_all_off([pump])
        zones = [zone.relay for zone in self._zones.values()]
        if not (pump_was_on and self._lag > 0 and any(relay.on for relay in zones)):
            return failures + switch_all_off(zones)
        now = time.monotonic()
        self._closing_until = now + self._lag
        self._guard.publish({relay: now + self._lag for relay in zones if relay.on})
        try:
            self._valves_timer = asyncio.get_running_loop().call_later(
                self._lag, self._close_valves_after_lag
            )
        except RuntimeError:  # no loop (start-up, tools): nothing would run the timer
            failures += switch_all_off(zones)
        return failures

    def _close_valves_after_lag(self) -> None:
        self._valves_timer = None
        if self._stopping:
            return  # stop() closes them
        failures = switch_all_off(zone.relay for zone in self._zones.values())
        for failure in failures:
            _LOGGER.error("sprinklers: %s", failure)
        if failures:
            self._fault = "; ".join([*([self._fault] if self._fault else []), *failures])
        self.notify_state()

    def _publish_deadlines(self, now: float) -> None:
        """Tell the guard thread the latest moment each relay that is on must be off."""
        if self._stopping:
            return
        lag = self._lag
        deadlines: dict[Relay, float] = {}
        latest = self._last_close
        for run in self._runs:
            if run.phase is _Phase.STARTING:
                end = max(run.open_at, now) + run.seconds + self.min_switch_interval
            elif run.phase is _Phase.OPEN:
                end = now if run.stop_requested else run.deadline
            else:
                end = run.close_at
            latest = max(latest, end)
            if run.zone.relay.on:
                # A pump stops at the deadline and its valves close a lag later; a master valve
                # closes a lag after its zone valves.
                deadlines[run.zone.relay] = end + (lag if self._pump_type == "pump" else 0.0)
        if self._pump is not None and self._pump.on:
            deadlines[self._pump] = latest + (lag if self._pump_type == "master_valve" else 0.0)
        if now < self._closing_until:
            for zone in self._zones.values():
                if zone.relay.on:
                    deadlines[zone.relay] = self._closing_until
        self._guard.publish(deadlines)

    # -- the day's watering (max_seconds_per_day)

    def _watered_left(self, zone: _Zone, now: float) -> float:
        """Seconds ``zone`` may still be open today (a running run counts as it goes)."""
        if zone.max_seconds_per_day is None:
            return math.inf
        used = self._ledger.used(zone.id)
        for run in self._runs:
            if run.zone is zone and run.phase is not _Phase.STARTING:
                used += max(0.0, now - run.opened_at)
        return zone.max_seconds_per_day - used

    def _account(self, zone: _Zone, opened_for: float, _now: float) -> None:
        if zone.max_seconds_per_day is not None:
            self._ledger.add(zone.id, opened_for)

    def _account_open_runs(self, now: float) -> None:
        for run in self._runs:
            if run.phase is not _Phase.STARTING and run.zone.relay.on:
                self._account(run.zone, now - run.opened_at, now)

    # -- rain delay persistence

    def _load_rain_delay(self) -> datetime | None:
        value = self._store.get(_RAIN_DELAY_KEY)
        if value is None:
            return None
        try:
            until = _parse_until(value)
        except vol.Invalid as err:
            _LOGGER.warning("ignoring the saved rain delay %r: %s", value, err)
            return None
        return until if until > datetime.now(UTC) else None

    def _save_rain_delay(self) -> None:
        if self._rain_delay_until is None:
            self._store.delete(_RAIN_DELAY_KEY)
        else:
            self._store.set(_RAIN_DELAY_KEY, _iso(self._rain_delay_until))
        # Rare and worth keeping: written now, not coalesced.
        self._store.flush()
