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


class _RelayError(DeviceError):
    """Writing a relay's pin failed."""


class _Relay:
    """One relay output; ``on`` is what it was last switched to."""

    def __init__(self, label: str, pin: int, output: Any) -> None:
        self.label = label
        self.pin = pin
        self._output = output
        self.on = False

    def switch(self, on: bool) -> None:
        try:
            if on:
                self._output.on()
            else:
                self._output.off()
        except Exception as err:
            verb = "on" if on else "off"
            raise _RelayError(
                f"{self.label} (GPIO{self.pin}): switching {verb} failed: {err}"
            ) from err
        self.on = on

    def close(self) -> None:
        self._output.close()


@dataclass(frozen=True)
class _Zone:
    id: str
    name: str
    default_seconds: float
    max_seconds: float
    # Says which limit max_seconds comes from, for the refusal message.
    limit_source: str
    relay: _Relay


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

    def __init__(self, config: Mapping[str, Any], pin_factory: Any, state_file: Path) -> None:
        super().__init__(DEVICE_ID, "Sprinklers")
        self._store = StateStore(state_file)
        self.max_concurrent: int = config["max_concurrent"]
        self.max_run_seconds: float = config["max_run_seconds"]
        self.queue_delay: float = config["queue_delay"]
        self._zones: dict[str, _Zone] = {}
        self._pump: _Relay | None = None
        self._pump_type = "pump"
        self._lead = 0.0
        self._lag = 0.0
        relays: list[_Relay] = []
        try:
            pump = config.get("pump")
            if pump is not None:
                self._pump = self._build_relay(pin_factory, pump, "sprinklers.pump.pin")
                relays.append(self._pump)
                self._pump_type = pump["type"]
                self._lead = pump["lead"]
                self._lag = pump["lag"]
            for index, zone in enumerate(config["zone"]):
                relay = self._build_relay(pin_factory, zone, f"sprinklers.zone[{index}].pin")
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
                    relay=relay,
                )
        except BaseException:
            for relay in relays:
                self._close_relay(relay)
            raise
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
    def _build_relay(pin_factory: Any, config: Mapping[str, Any], key: str) -> _Relay:
        output = build_output(
            pin_factory, config["pin"], key=key, active_high=config["active_high"]
        )
        return _Relay(config["name"], config["pin"], output)

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

    async def stop(self) -> None:
        """Switch the pump and every zone off, at once, and release the pins. Never raises."""
        self._stopping = True
        # Off first: nothing below may delay closing the valves.
        self._runs.clear()
        self._queue.clear()
        self._all_off()
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        self._store.flush()
        self.notify_state()
        relays = ([self._pump] if self._pump is not None else []) + [
            zone.relay for zone in self._zones.values()
        ]
        for relay in relays:
            self._close_relay(relay)

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
        if active is not None:
            # Running again means "water for this long from now": the timer restarts.
            active.seconds = run_seconds
            if active.phase is not _Phase.STARTING:
                active.phase = _Phase.OPEN
                active.stop_requested = False
                self._set_deadline(active, now + run_seconds, now)
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
        reason = "cancelled" if task.cancelled() else repr(task.exception())
        _LOGGER.error("sprinkler supervisor ended (%s); switching every zone off", reason)
        self._runs.clear()
        self._queue.clear()
        self._all_off()
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
                return True
        for run in self._runs:
            if run.phase is _Phase.STARTING and run.open_at <= now:
                if self._pump_type == "master_valve" and pump is not None and not pump.on:
                    break  # the master valve opens first (below)
                run.zone.relay.switch(True)
                run.phase = _Phase.OPEN
                run.opened_at = now
                self._set_deadline(run, now + run.seconds, now)
                return True
        if self._can_admit(now):
            item = self._queue.popleft()
            run = _Run(item.zone, item.seconds, open_at=now)
            if self._pump_type == "master_valve" and pump is not None:
                master_since = self._pump_on_since if pump.on else now
                run.open_at = max(now, master_since + self._lead)
            self._runs.append(run)
            return True
        if pump is not None and not pump.on and self._pump_wanted(now):
            pump.switch(True)
            self._pump_on_since = now
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

    def _can_admit(self, now: float) -> bool:
        return (
            bool(self._queue)
            and len(self._runs) < self.max_concurrent
            and not self._rain_delay_active()
            and now >= self._last_close + self.queue_delay
        )

    def _seconds_to_next_event(self, now: float) -> float | None:
        moments: list[float] = []
        for run in self._runs:
            if run.phase is _Phase.STARTING:
                moments.append(run.open_at)
            elif run.phase is _Phase.OPEN:
                moments.append(run.deadline)
                if self._pump_type == "pump" and self._pump is not None and not self._pump.on:
                    moments.append(run.opened_at + self._lead)
            else:
                moments.append(run.close_at)
        if self._pump is not None and self._pump.on and not self._runs:
            moments.append(self._last_close + self._lag)
        if self._queue and len(self._runs) < self.max_concurrent and not self._rain_delay_active():
            moments.append(self._last_close + self.queue_delay)
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
        if isinstance(err, _RelayError):
            _LOGGER.error("sprinklers: %s; switching every zone and the pump off", err)
        else:
            _LOGGER.error(
                "sprinklers: scheduling failed; switching every zone and the pump off",
                exc_info=err,
            )
        self._runs.clear()
        self._queue.clear()
        self._all_off()
        self._fault = f"{err}; every zone and the pump were switched off"
        self._dirty = True

    def _all_off(self) -> None:
        """Pump first, then every zone; one failing relay does not keep the others on."""
        relays = ([self._pump] if self._pump is not None else []) + [
            zone.relay for zone in self._zones.values()
        ]
        for relay in relays:
            try:
                relay.switch(False)
            except _RelayError as err:
                _LOGGER.error("sprinklers: %s", err)

    def _close_relay(self, relay: _Relay) -> None:
        try:
            relay.close()
        except Exception:
            _LOGGER.exception("sprinklers: releasing %s (GPIO%d) failed", relay.label, relay.pin)

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
