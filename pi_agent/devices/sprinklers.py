"""The fail-safe sprinkler controller: zone valves, an optional pump or master valve, a FIFO queue.

One device, ``sprinklers``, owns every zone relay so it can enforce ``max_concurrent`` and the
pump sequencing. This module is its shell: action handlers, state, persistence and the fail
safe. Its config is sprinkler_config.py, its relays and their deadline guard sprinkler_relays.py,
what it has planned sprinkler_plan.py, and what to switch when sprinkler_schedule.py: pure
functions of (now, plan) that this shell runs in one synchronous scheduling pass (``_advance``)
from the action handlers and from a supervisor task that sleeps until the next deadline. So a zone
turns off on time with no client connected, and any exception inside a pass switches every relay
off (fail safe) before it is reported. The time comes only from the injected ``Clock``.

While a rain delay is set, ``run`` is refused with the reason and queued runs wait in the queue;
zones already running finish their run. The rain delay and the day's watering are kept in
``STATE_DIR/sprinklers.json`` (watering_ledger.py) so a restart forgets neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import voluptuous as vol
from pi_secure_ws_protocol.devices.kinds import DeviceKind
from pi_secure_ws_protocol.devices.sprinklers import DEVICE_ID, SprinklerAction

from pi_agent.devices import sprinkler_plan
from pi_agent.devices import sprinkler_schedule as schedule
from pi_agent.devices.base import (
    Action,
    ActionResult,
    CallContext,
    Device,
    DeviceContext,
    DeviceError,
    Refused,
)
from pi_agent.devices.gpio import seconds
from pi_agent.devices.relays import Relay, RelayError
from pi_agent.devices.sprinkler_config import (
    CONFIG_KEY,
    CONFIG_SCHEMA,
    LONGEST_RUN,
    ControllerSettings,
    iso,
    parse_until,
    used_pins,
)
from pi_agent.devices.sprinkler_plan import Now, Plan, evolve
from pi_agent.devices.sprinkler_relays import SYSTEM_CLOCK, Clock, SprinklerRelays
from pi_agent.devices.sprinkler_schedule import Switch
from pi_agent.devices.watering_ledger import WateringLedger, save_rain_delay, saved_rain_delay
from pi_agent.state_store import StateStore

__all__ = [
    "CONFIG_KEY",
    "CONFIG_SCHEMA",
    "SYSTEM_CLOCK",
    "Clock",
    "SprinklerController",
    "create",
    "used_pins",
]

_LOGGER = logging.getLogger(__name__)

STATE_FILE_NAME: Final = "sprinklers.json"
# A pass settles in a handful of steps; more means a scheduling bug, which the fail safe handles.
_MAX_STEPS_PER_PASS: Final = 1000


def create(
    section: Mapping[str, Any], ctx: DeviceContext, *, clock: Clock = SYSTEM_CLOCK
) -> list[Device]:
    """Build the controller with every relay off."""
    settings = ControllerSettings.from_config(section)  # idempotent; fills a raw section's defaults
    return [SprinklerController(settings, ctx.pin_factory, ctx.state_dir / STATE_FILE_NAME, clock)]


@dataclass(frozen=True)
class _Zone:
    relay: Relay  # tests look a zone's pin up as ``_zones[id].relay``


class SprinklerController(Device):
    """Every zone, the pump, the queue and the rain delay, behind one device."""

    kind = DeviceKind.SPRINKLER_CONTROLLER
    stop_rank = 0

    def __init__(
        self,
        settings: ControllerSettings,
        pin_factory: Any,
        state_file: Path,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(DEVICE_ID, "Sprinklers")
        self.settings = settings
        self._clock = clock
        # Every relay is built (driven to its inactive level) before any state is read.
        self._bank = SprinklerRelays(settings, pin_factory, clock.monotonic)
        self._zones = {zone: _Zone(self._bank.valves[zone]) for zone in settings.zones}
        self._pump = self._bank.pump
        self._store = StateStore(state_file)
        self._guard = self._bank.guard
        self._ledger = WateringLedger(self._store, self._zones, today=self._today)
        self._plan = evolve(Plan.initial(settings), rain_delay_until=self._load_rain_delay())
        self._fault: str | None = None
        self._dirty = False
        self._wake: asyncio.Event | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._actions = self._build_actions()

    def _relays(self) -> list[Relay]:
        """The pump first, then the valves."""
        return self._bank.all()

    def _now(self) -> Now:
        return Now(self._clock.monotonic(), self._clock.wall())

    def _today(self) -> date:
        return self._clock.wall().astimezone().date()  # the Pi's own (local) day

    def _build_actions(self) -> dict[str, Action]:
        zone_ids = sorted(self._zones)
        zone = vol.In(zone_ids, msg=f"unknown zone; expected one of: {', '.join(zone_ids)}")
        run_seconds = seconds(0.0, LONGEST_RUN, min_included=False)
        actions = (
            Action(
                SprinklerAction.RUN,
                self._run,
                vol.Schema({vol.Required("zone"): zone, vol.Optional("seconds"): run_seconds}),
            ),
            Action(SprinklerAction.STOP, self._stop_zone, vol.Schema({vol.Required("zone"): zone})),
            Action(SprinklerAction.STOP_ALL, self._stop_all),
            Action(SprinklerAction.CLEAR_QUEUE, self._clear_queue),
            Action(
                SprinklerAction.SET_RAIN_DELAY,
                self._set_rain_delay,
                vol.Schema({vol.Required("until"): parse_until}),
            ),
            Action(SprinklerAction.CLEAR_RAIN_DELAY, self._clear_rain_delay),
        )
        return {action.name: action for action in actions}

    # -- Device interface

    def capabilities(self) -> dict[str, Any]:
        return self.settings.capabilities().to_wire()

    def state(self) -> dict[str, Any]:
        plan = self._bank.observe(self._plan)
        return sprinkler_plan.state(plan, self._clock.monotonic(), fault=self._fault).to_wire()

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
        self._drop_plan()
        failures = await self._bank.stop()
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
        zone = self.settings.zones[params["zone"]]
        run_seconds: float = params.get("seconds", zone.default_seconds)
        now = self._now()
        self._plan = sprinkler_plan.run_zone(self._observed(), now, zone.id, run_seconds)
        self._fault = None
        self._changed()
        return sprinkler_plan.run_answer(self._plan, now, zone.id, run_seconds).to_wire()

    async def _stop_zone(self, params: dict[str, Any], _call: CallContext) -> ActionResult:
        self._check_running()
        self._plan, stopped = sprinkler_plan.stop_zone(self._plan, params["zone"])
        self._changed()
        return {"zone": params["zone"], "stopped": stopped}

    async def _stop_all(self, _params: dict[str, Any], _call: CallContext) -> ActionResult:
        self._check_running()
        self._plan = sprinkler_plan.stop_all(self._plan)
        self._changed()
        return None

    async def _clear_queue(self, _params: dict[str, Any], _call: CallContext) -> ActionResult:
        self._check_running()
        self._plan, cleared = sprinkler_plan.clear_queue(self._plan)
        self._changed()
        return {"cleared": cleared}

    async def _set_rain_delay(self, params: dict[str, Any], _call: CallContext) -> ActionResult:
        self._check_running()
        until: datetime = params["until"]
        if until <= self._clock.wall():
            raise Refused(f"the rain delay end {iso(until)} is already past")
        self._plan = evolve(self._plan, rain_delay_until=until)
        self._save_rain_delay()
        self._changed()
        return {"rain_delay_until": iso(until), "queued_runs_waiting": len(self._plan.queue)}

    async def _clear_rain_delay(self, _params: dict[str, Any], _call: CallContext) -> ActionResult:
        self._check_running()
        self._plan = evolve(self._plan, rain_delay_until=None)
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
            self._publish_deadlines()
            try:
                timeout = schedule.next_wake(self._now(), self._plan)
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
        self._plan = evolve(self._plan, runs=(), queue=())
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
            now = self._now()
            if self._guard.tripped is not None:
                # The guard switched everything off while this loop was stuck: drop the plan
                # the relays no longer follow, then let them switch on again.
                self._plan = evolve(self._plan, runs=(), queue=())
                reason = self._guard.acknowledge()
                self._fault = (
                    f"the event loop stalled and {reason}; the deadline guard switched every "
                    "zone and the pump off"
                )
                self._dirty = True
            plan = self._observed()
            for _ in range(_MAX_STEPS_PER_PASS):
                result = schedule.step(now, plan)
                if result is None:
                    break
                plan = self._apply(result)
                self._plan = plan
                self._dirty = True
            else:
                raise RuntimeError("the scheduling pass did not settle")
        except Exception as err:
            self._fail_safe(err)
            raise DeviceError(f"{err}; every zone and the pump were switched off") from err
        finally:
            self._publish_deadlines()
            if self._dirty:
                self._dirty = False
                self.notify_state()

    def _apply(self, result: schedule.Step) -> Plan:
        """Carry out one step's command; the plan it leads to (raises when a relay fails)."""
        command = result.command
        if isinstance(command, Switch):
            changed_at = self._bank.switch(command)
            if command.zone is not None and not command.on:
                self._account({command.zone: command.opened_for})
            return schedule.switched(result.plan, command, changed_at)
        if command is not None:  # the rain delay ended
            self._plan = result.plan
            self._save_rain_delay()
        return result.plan

    def _observed(self) -> Plan:
        """The plan with the relays' real levels and the day's ledger (both change under it)."""
        watered = self._ledger.watered(z.id for z in self.settings.zones.values() if z.counts_daily)
        plan = self._bank.observe(self._plan)
        if plan.watered != watered:
            plan = evolve(plan, watered=watered)
        self._plan = plan
        return plan

    # -- fail safe

    def _drop_plan(self) -> None:
        """Account every open valve and forget runs and queue (stop and fault paths)."""
        self._account(sprinkler_plan.open_for(self._observed(), self._clock.monotonic()))
        self._plan = evolve(self._plan, runs=(), queue=())

    def _fail_safe(self, err: BaseException) -> None:
        # Off first, the log after: a slow log handler must not keep a valve open.
        self._drop_plan()
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
        """Every relay off in the safe order (the valves after the pump's lag); the failures."""
        failures, closing_until = self._bank.all_off(self._valves_closed)
        if closing_until is not None:
            self._plan = evolve(self._plan, closing_until=closing_until)
        return failures

    def _valves_closed(self, failures: list[str]) -> None:
        for failure in failures:
            _LOGGER.error("sprinklers: %s", failure)
        if failures:
            self._fault = "; ".join([*([self._fault] if self._fault else []), *failures])
        self.notify_state()

    def _publish_deadlines(self) -> None:
        self._bank.publish(self._plan)

    # -- persistence: the day's watering (max_seconds_per_day) and the rain delay

    def _account(self, opened_for: Mapping[str, float]) -> None:
        for zone, seconds_open in opened_for.items():
            if self.settings.zones[zone].counts_daily:
                self._ledger.add(zone, seconds_open)

    def _load_rain_delay(self) -> datetime | None:
        return saved_rain_delay(self._store, self._clock.wall())

    def _save_rain_delay(self) -> None:
        save_rain_delay(self._store, self._plan.rain_delay_until)
