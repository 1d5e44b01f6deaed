"""The sprinkler controller driven through its action handlers, asserting real MockFactory pins.

Every pin change is recorded with its monotonic time by a MockFactory pin subclass, so the tests
check the order and spacing of relay switching (valve before pump, lag before the valve closes)
and that deadlines are kept with nobody calling. What only tests scheduling (queue, concurrency,
queue delay, re-sent runs, chatter) runs on a fake clock in test_sprinkler_schedule.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import stat
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from gpiozero import LED
from gpiozero.pins.mock import MockFactory, MockPWMPin
from pi_secure_ws_testing.devices import call
from pi_secure_ws_testing.waiting import wait_until

from pi_agent.devices import sprinkler_schedule, sprinklers
from pi_agent.devices.base import DeviceContext, DeviceError, Refused
from pi_agent.devices.sprinkler_config import ControllerSettings
from pi_agent.devices.sprinkler_relays import SprinklerRelays

ZONE_PINS = {"lawn": 5, "beds": 6, "hedge": 13}
PUMP_PIN = 19
LEAD = 0.05
LAG = 0.05


@dataclass(frozen=True)
class PinEvent:
    at: float
    pin: int
    on: bool


class RecordingPin(MockPWMPin):  # type: ignore[misc]
    """A mock pin that logs every change and can be told to fail like broken hardware."""

    events: list[PinEvent]  # set per factory by the fixture

    def __init__(self, factory: Any, info: Any) -> None:
        super().__init__(factory, info)
        self.fail_writes = False
        self.released = False

    def close(self) -> None:
        # The mock drops a released PWM pin to 0; a real relay pin just stops being driven.
        self.released = True
        super().close()

    def _set_state(self, value: Any) -> None:
        if self.fail_writes:
            raise OSError("GPIO write failed (simulated)")
        super()._set_state(value)

    def _change_state(self, value: Any) -> bool:
        changed: bool = super()._change_state(value)
        if changed and self._function == "output" and not self.released:
            gpio = int(self.info.name.removeprefix("GPIO"))
            self.events.append(PinEvent(time.monotonic(), gpio, bool(value)))
        return changed


def zone(zone_id: str, **overrides: Any) -> dict[str, Any]:
    return {"id": zone_id, "name": zone_id.title(), "pin": ZONE_PINS[zone_id], **overrides}


def section(*, pump: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "max_run_seconds": 5,
        "zone": [zone("lawn"), zone("beds"), zone("hedge")],
        **overrides,
    }
    if pump is not None:
        config["pump"] = {"pin": PUMP_PIN, "lead": LEAD, "lag": LAG, **pump}
    return config


class Rig:
    """A started controller on a recording mock factory; stopped at the end of a test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.events: list[PinEvent] = []
        self.controller: Any = None
        pin_class = type("TestPin", (RecordingPin,), {"events": self.events})
        self.factory = MockFactory(pin_class=pin_class)

    async def start(self, config: dict[str, Any]) -> Any:
        ctx = DeviceContext(
            pin_factory=self.factory,
            state_dir=self.tmp_path / "state",
            mock=True,
            config_dir=self.tmp_path,
        )
        [self.controller] = sprinklers.create(sprinklers.CONFIG_SCHEMA(config), ctx)
        await self.controller.start()
        self.events.clear()
        return self.controller

    def pin(self, number: int) -> Any:
        return self.factory.pin(number)

    def is_on(self, zone_id: str) -> bool:
        return bool(self.pin(ZONE_PINS[zone_id]).state)

    def switched(self, number: int, on: bool) -> float:
        """When pin ``number`` was first switched on (or off)."""
        return next(event.at for event in self.events if event.pin == number and event.on == on)

    def last_level(self, number: int) -> bool:
        """The level pin ``number`` was last driven to."""
        return [event.on for event in self.events if event.pin == number][-1]

    def on_pins(self) -> list[int]:
        return [number for number in [*ZONE_PINS.values(), PUMP_PIN] if self.pin(number).state]

    async def stop(self) -> None:
        if self.controller is not None:
            await self.controller.stop()
            self.controller = None


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = Rig(tmp_path)
    yield rig
    await rig.stop()


async def test_every_relay_is_off_after_create(rig: Rig) -> None:
    inverted = section(pump={"active_high": False})
    inverted["zone"][0]["active_high"] = False
    controller = await rig.start(inverted)
    assert rig.pin(ZONE_PINS["lawn"]).state == 1  # active-low: high is off
    assert rig.pin(PUMP_PIN).state == 1
    assert rig.pin(ZONE_PINS["beds"]).state == 0
    assert controller.state()["pump"] is False
    assert controller.describe() == {
        "id": "sprinklers",
        "kind": "sprinkler_controller",
        "name": "Sprinklers",
        "capabilities": {
            "zones": [
                {"id": "lawn", "name": "Lawn", "default_seconds": 5.0, "max_seconds": 5.0},
                {"id": "beds", "name": "Beds", "default_seconds": 5.0, "max_seconds": 5.0},
                {"id": "hedge", "name": "Hedge", "default_seconds": 5.0, "max_seconds": 5.0},
            ],
            "max_concurrent": 1,
            "max_run_seconds": 5.0,
            "has_pump": True,
        },
    }


async def test_zone_turns_off_at_its_deadline_with_nobody_calling(rig: Rig) -> None:
    controller = await rig.start(section())
    pushed: list[dict[str, Any]] = []
    controller.add_listener(lambda device: pushed.append(device.state()))
    started = time.monotonic()

    result = await call(controller, "run", {"zone": "lawn", "seconds": 0.3})
    assert result["status"] == "running"
    assert rig.is_on("lawn")
    state = controller.state()
    assert state["zones"]["lawn"]["open"] is True
    assert 0 < state["zones"]["lawn"]["remaining"] <= 0.3
    ends_at = datetime.fromisoformat(state["zones"]["lawn"]["ends_at"])
    assert ends_at.tzinfo is not None
    assert state["running"] == ["lawn"]
    assert state["pump"] is None

    await wait_until(lambda: not rig.is_on("lawn"))
    assert rig.switched(ZONE_PINS["lawn"], False) - started >= 0.3
    assert controller.state()["zones"]["lawn"] == {
        "open": False,
        "remaining": None,
        "ends_at": None,
    }
    assert controller.state()["running"] == []
    # One push when the zone opened and one when it closed; no per-second chatter.
    assert [state["zones"]["lawn"]["open"] for state in pushed] == [True, False]


async def test_zone_default_run_time_applies_when_no_seconds_are_given(rig: Rig) -> None:
    config = section()
    config["zone"][0]["default_seconds"] = 0.2
    controller = await rig.start(config)
    result = await call(controller, "run", {"zone": "lawn"})
    assert result["seconds"] == 0.2
    await wait_until(lambda: not rig.is_on("lawn"))


async def test_pump_starts_after_the_valve_and_stops_before_it_closes(rig: Rig) -> None:
    controller = await rig.start(section(pump={}))
    await call(controller, "run", {"zone": "lawn", "seconds": 0.2})
    assert rig.is_on("lawn")
    await wait_until(lambda: rig.on_pins() == [])
    assert [(event.pin, event.on) for event in rig.events] == [
        (ZONE_PINS["lawn"], True),
        (PUMP_PIN, True),
        (PUMP_PIN, False),
        (ZONE_PINS["lawn"], False),
    ]
    lawn = ZONE_PINS["lawn"]
    assert rig.switched(PUMP_PIN, True) - rig.switched(lawn, True) >= LEAD
    assert rig.switched(lawn, False) - rig.switched(PUMP_PIN, False) >= LAG
    assert rig.switched(PUMP_PIN, False) - rig.switched(lawn, True) >= 0.2
    assert controller.state()["pump"] is False


async def test_master_valve_opens_before_the_zone_and_closes_after_it(rig: Rig) -> None:
    controller = await rig.start(section(pump={"type": "master_valve"}))
    result = await call(controller, "run", {"zone": "lawn", "seconds": 0.2})
    assert result["status"] == "starting"
    assert rig.pin(PUMP_PIN).state == 1
    assert not rig.is_on("lawn")
    await wait_until(lambda: rig.on_pins() == [])
    lawn = ZONE_PINS["lawn"]
    assert [(event.pin, event.on) for event in rig.events] == [
        (PUMP_PIN, True),
        (lawn, True),
        (lawn, False),
        (PUMP_PIN, False),
    ]
    assert rig.switched(lawn, True) - rig.switched(PUMP_PIN, True) >= LEAD
    assert rig.switched(PUMP_PIN, False) - rig.switched(lawn, False) >= LAG
    assert rig.switched(lawn, False) - rig.switched(lawn, True) >= 0.2
    assert controller.state()["pump"] is False


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"zone": "lawn", "seconds": 2}, "'lawn' may run at most 1 s (its max_seconds); 2 s"),
        (
            {"zone": "beds", "seconds": 6},
            "'beds' may run at most 5 s (the controller's max_run_seconds); 6 s",
        ),
    ],
)
async def test_runs_over_the_limit_are_refused_with_the_reason(
    rig: Rig, params: dict[str, Any], reason: str
) -> None:
    config = section()
    config["zone"][0]["max_seconds"] = 1
    config["zone"][0]["default_seconds"] = 1
    controller = await rig.start(config)
    with pytest.raises(Refused, match=re.escape(reason)):
        await call(controller, "run", params)
    assert rig.on_pins() == []
    assert controller.state()["queue"] == []


async def test_bad_run_parameters_name_the_key(rig: Rig) -> None:
    controller = await rig.start(section())
    with pytest.raises(vol.Invalid, match=r"unknown zone; expected one of: beds, hedge, lawn"):
        await call(controller, "run", {"zone": "garage"})
    with pytest.raises(vol.Invalid, match=r"seconds"):
        await call(controller, "run", {"zone": "lawn", "seconds": float("nan")})
    with pytest.raises(vol.Invalid, match=r"seconds"):
        await call(controller, "run", {"zone": "lawn", "seconds": 0})


async def test_a_zone_already_queued_is_refused(rig: Rig) -> None:
    controller = await rig.start(section())
    await call(controller, "run", {"zone": "lawn", "seconds": 1})
    await call(controller, "run", {"zone": "beds", "seconds": 1})
    with pytest.raises(Refused, match=r"'beds' is already queued \(position 1\)"):
        await call(controller, "run", {"zone": "beds", "seconds": 2})


async def test_stop_closes_a_running_zone_and_removes_a_queued_one(rig: Rig) -> None:
    controller = await rig.start(section())
    await call(controller, "run", {"zone": "lawn", "seconds": 2})
    await call(controller, "run", {"zone": "beds", "seconds": 2})
    await call(controller, "run", {"zone": "hedge", "seconds": 2})

    assert await call(controller, "stop", {"zone": "beds"}) == {"zone": "beds", "stopped": True}
    assert [item["zone"] for item in controller.state()["queue"]] == ["hedge"]
    assert await call(controller, "stop", {"zone": "lawn"}) == {"zone": "lawn", "stopped": True}
    assert not rig.is_on("lawn")
    # The queue moves on: hedge starts at once, and the stopped beds never ran.
    assert rig.is_on("hedge")
    assert ZONE_PINS["beds"] not in [event.pin for event in rig.events]
    assert await call(controller, "clear_queue") == {"cleared": 0}


async def test_stop_all_with_a_pump_stops_the_pump_first_then_every_valve(rig: Rig) -> None:
    controller = await rig.start(section(pump={}, max_concurrent=2))
    await call(controller, "run", {"zone": "lawn", "seconds": 3})
    await call(controller, "run", {"zone": "beds", "seconds": 3})
    await call(controller, "run", {"zone": "hedge", "seconds": 3})
    await wait_until(lambda: rig.pin(PUMP_PIN).state == 1)

    await call(controller, "stop_all")
    assert rig.pin(PUMP_PIN).state == 0
    assert controller.state()["queue"] == []
    await wait_until(lambda: rig.on_pins() == [])
    pump_off = rig.switched(PUMP_PIN, False)
    assert rig.switched(ZONE_PINS["lawn"], False) - pump_off >= LAG
    assert rig.switched(ZONE_PINS["beds"], False) - pump_off >= LAG
    assert not any(event.pin == ZONE_PINS["hedge"] for event in rig.events)


async def test_clear_queue_keeps_the_running_zone(rig: Rig) -> None:
    controller = await rig.start(section())
    await call(controller, "run", {"zone": "lawn", "seconds": 0.2})
    await call(controller, "run", {"zone": "beds", "seconds": 0.2})
    assert await call(controller, "clear_queue") == {"cleared": 1}
    assert rig.is_on("lawn")
    await wait_until(lambda: not rig.is_on("lawn"))
    await asyncio.sleep(0.05)
    assert not rig.is_on("beds")


async def test_rain_delay_refuses_new_runs_and_holds_the_queue(rig: Rig) -> None:
    controller = await rig.start(section())
    await call(controller, "run", {"zone": "lawn", "seconds": 0.15})
    await call(controller, "run", {"zone": "beds", "seconds": 0.15})
    until = datetime.now(UTC) + timedelta(hours=2)
    result = await call(controller, "set_rain_delay", {"until": until.isoformat()})
    assert result["queued_runs_waiting"] == 1
    assert controller.state()["rain_delay_until"] is not None

    with pytest.raises(Refused, match=r"rain delay until .*'hedge' was not started"):
        await call(controller, "run", {"zone": "hedge", "seconds": 0.1})
    # The running zone finishes its run; the queued one waits out the rain delay.
    await wait_until(lambda: not rig.is_on("lawn"))
    await asyncio.sleep(0.1)
    assert not rig.is_on("beds")
    assert controller.state()["queue"] == [{"zone": "beds", "seconds": 0.15}]

    await call(controller, "clear_rain_delay")
    assert controller.state()["rain_delay_until"] is None
    assert rig.is_on("beds")


@pytest.mark.parametrize(
    ("until", "error", "message"),
    [
        ("2030-06-01T06:00:00", vol.Invalid, "no time zone"),
        ("tomorrow", vol.Invalid, "not an ISO 8601 date-time"),
        (True, vol.Invalid, "ISO 8601"),
        ("2001-01-01T00:00:00Z", Refused, "already past"),
    ],
)
async def test_bad_rain_delay_is_refused(
    rig: Rig, until: Any, error: type[Exception], message: str
) -> None:
    controller = await rig.start(section())
    with pytest.raises(error, match=message):
        await call(controller, "set_rain_delay", {"until": until})
    assert controller.state()["rain_delay_until"] is None


async def test_rain_delay_survives_a_restart(rig: Rig) -> None:
    controller = await rig.start(section())
    until = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    await call(controller, "set_rain_delay", {"until": until.isoformat()})
    state_file = rig.tmp_path / "state" / sprinklers.STATE_FILE_NAME
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    await rig.stop()

    controller = await rig.start(section())
    assert datetime.fromisoformat(controller.state()["rain_delay_until"]) == until
    with pytest.raises(Refused, match="rain delay"):
        await call(controller, "run", {"zone": "lawn", "seconds": 1})


async def test_bad_saved_rain_delay_is_logged_and_ignored(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    state_dir = rig.tmp_path / "state"
    state_dir.mkdir()
    (state_dir / sprinklers.STATE_FILE_NAME).write_text(json.dumps({"rain_delay_until": "soon"}))
    with caplog.at_level(logging.WARNING):
        controller = await rig.start(section())
    assert "ignoring the saved rain delay 'soon'" in caplog.text
    assert controller.state()["rain_delay_until"] is None


async def test_stop_switches_the_pump_off_first_and_holds_every_pin_off(rig: Rig) -> None:
    inverted = section(pump={}, max_concurrent=2)
    inverted["zone"][1]["active_high"] = False
    controller = await rig.start(inverted)
    await call(controller, "run", {"zone": "lawn", "seconds": 3})
    await call(controller, "run", {"zone": "beds", "seconds": 3})
    await wait_until(lambda: rig.pin(PUMP_PIN).state == 1)
    assert rig.pin(ZONE_PINS["beds"]).state == 0  # active-low and open

    await rig.stop()
    assert rig.last_level(ZONE_PINS["lawn"]) is False
    assert rig.last_level(ZONE_PINS["beds"]) is True
    assert rig.last_level(PUMP_PIN) is False
    # The pump first, the valves after its lag: it never pushes against closed valves.
    pump_off = rig.switched(PUMP_PIN, False)
    assert rig.switched(ZONE_PINS["lawn"], False) - pump_off >= LAG
    assert rig.switched(ZONE_PINS["beds"], True) - pump_off >= LAG  # active-low: off is high
    # Held, not released: still outputs at the inactive level, not floating inputs.
    for number in [*ZONE_PINS.values(), PUMP_PIN]:
        assert not rig.pin(number).released
        assert rig.pin(number).function == "output"
    assert rig.pin(ZONE_PINS["beds"]).state == 1
    assert rig.pin(ZONE_PINS["lawn"]).state == 0
    assert controller.state()["zones"]["beds"]["open"] is False
    with pytest.raises(Refused, match="shutting down"):
        await call(controller, "run", {"zone": "lawn"})


async def test_relay_write_error_switches_everything_off_and_reports_it(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    controller = await rig.start(section(pump={}, max_concurrent=2))
    await call(controller, "run", {"zone": "lawn", "seconds": 3})
    await wait_until(lambda: rig.pin(PUMP_PIN).state == 1)
    rig.pin(ZONE_PINS["beds"]).fail_writes = True

    with caplog.at_level(logging.ERROR), pytest.raises(DeviceError, match=r"GPIO6.*switched off"):
        await call(controller, "run", {"zone": "beds", "seconds": 1})
    assert rig.on_pins() == [ZONE_PINS["lawn"]]  # the pump is off; its valve closes after the lag
    await wait_until(lambda: rig.on_pins() == [])
    assert rig.switched(ZONE_PINS["lawn"], False) - rig.switched(PUMP_PIN, False) >= LAG
    assert "Beds (GPIO6): switching on failed" in caplog.text
    state = controller.state()
    assert state["running"] == []
    assert state["queue"] == []
    assert "switched off" in state["fault"]
    # The controller keeps working for the healthy zones afterwards.
    await call(controller, "run", {"zone": "lawn", "seconds": 0.1})
    assert controller.state()["fault"] is None
    # Not at once: a relay switches on no sooner than min_switch_interval after its last change.
    await wait_until(lambda: rig.is_on("lawn"))
    await wait_until(lambda: rig.on_pins() == [])


async def test_failure_in_the_background_turns_every_zone_off(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    controller = await rig.start(section(pump={}))
    pushed: list[dict[str, Any]] = []
    controller.add_listener(lambda device: pushed.append(device.state()))
    rig.pin(PUMP_PIN).fail_writes = True
    with caplog.at_level(logging.ERROR):
        # The valve opens now; the pump is due LEAD later, from the supervisor, with no caller.
        await call(controller, "run", {"zone": "lawn", "seconds": 3})
        assert rig.is_on("lawn")
        await wait_until(lambda: not rig.is_on("lawn"))
    assert "Pump (GPIO19): switching on failed" in caplog.text
    assert pushed[-1]["fault"] is not None
    assert pushed[-1]["zones"]["lawn"]["open"] is False


@pytest.mark.parametrize(
    ("bug", "message"),
    [
        (lambda now, plan: 1 / 0, "division by zero"),
        # A step that changes nothing but never says it is done: the pass must not spin.
        (lambda now, plan: sprinkler_schedule.Step(plan, None), "did not settle"),
    ],
)
async def test_a_scheduling_bug_switches_the_pump_then_every_valve_off(
    rig: Rig,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    bug: Callable[[Any, Any], Any],
    message: str,
) -> None:
    controller = await rig.start(section(pump={}))
    await call(controller, "run", {"zone": "lawn", "seconds": 3})
    await wait_until(lambda: rig.pin(PUMP_PIN).state == 1)
    monkeypatch.setattr(sprinkler_schedule, "step", bug)
    with caplog.at_level(logging.ERROR), pytest.raises(DeviceError, match=message):
        await call(controller, "clear_queue")
    assert rig.on_pins() == [ZONE_PINS["lawn"]]  # the pump is off; its valve closes after the lag
    await wait_until(lambda: rig.on_pins() == [])
    assert rig.switched(ZONE_PINS["lawn"], False) - rig.switched(PUMP_PIN, False) >= LAG
    assert "scheduling failed" in caplog.text
    assert message in controller.state()["fault"]


async def test_the_supervisor_ending_unasked_switches_every_zone_off(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    controller = await rig.start(section())
    await controller.start()  # a second start changes nothing
    await call(controller, "run", {"zone": "lawn", "seconds": 3})
    with caplog.at_level(logging.ERROR):
        controller._supervisor.cancel()  # only stop() may end it
        await wait_until(lambda: not rig.is_on("lawn"))
    assert "sprinkler supervisor ended (cancelled)" in caplog.text
    assert "the scheduler stopped" in controller.state()["fault"]
    with pytest.raises(DeviceError, match="not running"):
        await call(controller, "run", {"zone": "lawn"})
    await controller.stop()
    await controller.stop()  # a second stop changes nothing


def test_a_relay_that_cannot_be_built_leaves_the_built_ones_held(tmp_path: Path) -> None:
    factory = MockFactory(pin_class=MockPWMPin)
    ctx = DeviceContext(pin_factory=factory, state_dir=tmp_path, mock=True, config_dir=tmp_path)
    blocker = LED(ZONE_PINS["beds"], pin_factory=factory)
    try:
        with pytest.raises(DeviceError, match=r"sprinklers.zone\[1\].pin: cannot use GPIO6"):
            sprinklers.create(section(), ctx)
    finally:
        blocker.close()
    lawn = factory.pin(ZONE_PINS["lawn"])
    assert (lawn.function, lawn.state) == ("output", 0)


def test_switching_everything_off_without_an_event_loop_closes_the_valves_at_once() -> None:
    config = ControllerSettings.from_config(section(pump={}))
    bank = SprinklerRelays(config, MockFactory(pin_class=MockPWMPin), time.monotonic)
    bank.valves["lawn"].switch(True)
    assert bank.pump is not None
    bank.pump.switch(True)
    closed: list[list[str]] = []
    assert bank.all_off(closed.append) == ([], None)  # no loop would run a lag timer
    assert [relay.on for relay in bank.all()] == [False] * 4
    assert closed == []


async def test_actions_need_a_started_controller(tmp_path: Path) -> None:
    ctx = DeviceContext(
        pin_factory=MockFactory(pin_class=MockPWMPin),
        state_dir=tmp_path,
        mock=True,
        config_dir=tmp_path,
    )
    [controller] = sprinklers.create(section(), ctx)
    try:
        with pytest.raises(DeviceError, match="not running"):
            await call(controller, "run", {"zone": "lawn"})
    finally:
        await controller.stop()


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda c: c["zone"][1].update(id="lawn"), ["zone", 1, "id"], "used by another zone"),
        (lambda c: c["zone"][0].update(max_seconds=10), ["zone", 0, "max_seconds"], "above"),
        (lambda c: c["zone"][0].update(default_seconds=9), ["zone", 0, "default_seconds"], "above"),
        (lambda c: c["zone"][0].update(pin=40), ["zone", 0, "pin"], "0-27"),
        (lambda c: c.update(zone=[]), ["zone"], "needs 1-32"),
        (lambda c: c.update(max_concurrent=0), ["max_concurrent"], "1-32"),
        (lambda c: c.update(pump={"pin": 4, "type": "well"}), ["pump", "type"], "master_valve"),
        (lambda c: c.update(pump={"pin": 4, "lead": -1}), ["pump", "lead"], "0 to 60"),
        (lambda c: c.update(valves=2), ["valves"], "extra keys"),
    ],
)
def test_config_errors_name_the_key(
    change: Callable[[dict[str, Any]], None], path: list[Any], message: str
) -> None:
    config = section()
    change(config)
    with pytest.raises(vol.MultipleInvalid) as info:
        sprinklers.CONFIG_SCHEMA(config)
    error = info.value.errors[0]
    assert error.path == path
    assert message in str(error)


def test_config_defaults_and_used_pins() -> None:
    config = section(pump={})
    del config["max_run_seconds"]
    config["zone"][0]["max_seconds"] = 300
    valid = sprinklers.CONFIG_SCHEMA(config)
    assert valid["max_concurrent"] == 1
    assert valid["max_run_seconds"] == 3600
    assert valid["queue_delay"] == 0
    assert valid["pump"]["type"] == "pump"
    assert valid["pump"]["name"] == "Pump"
    # A zone capped below the default run time defaults to its cap.
    assert valid["zone"][0]["default_seconds"] == 300
    assert valid["zone"][1]["default_seconds"] == 600
    assert sprinklers.used_pins(valid) == [
        ("sprinklers.zone[0].pin", 5),
        ("sprinklers.zone[1].pin", 6),
        ("sprinklers.zone[2].pin", 13),
        ("sprinklers.pump.pin", PUMP_PIN),
    ]


# -- the day's cap across a restart, and the deadline guard


async def test_max_seconds_per_day_counts_every_run_and_survives_a_restart(rig: Rig) -> None:
    config = section(min_switch_interval=0.0, max_seconds_per_day=0.4)
    controller = await rig.start(config)
    await call(controller, "run", {"zone": "lawn", "seconds": 0.25})
    await wait_until(lambda: not rig.is_on("lawn") and not controller.state()["running"])
    # 0.15 s left today: the next run is cut to that, then the zone is refused for the day.
    await call(controller, "run", {"zone": "lawn", "seconds": 5})
    await wait_until(lambda: not controller.state()["running"], timeout=3)
    with pytest.raises(Refused, match="max_seconds_per_day"):
        await call(controller, "run", {"zone": "lawn", "seconds": 1})
    await call(controller, "run", {"zone": "beds", "seconds": 0.05})  # other zones are not capped
    await wait_until(lambda: not controller.state()["running"])
    await rig.stop()
    again = await rig.start(config)
    with pytest.raises(Refused, match="max_seconds_per_day"):
        await call(again, "run", {"zone": "lawn", "seconds": 1})


async def test_deadline_guard_switches_off_while_the_loop_is_stuck(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    controller = await rig.start(section(pump={}, min_switch_interval=0.0))
    await call(controller, "run", {"zone": "lawn", "seconds": 0.2})
    await wait_until(lambda: rig.pin(PUMP_PIN).state == 1)
    opened = rig.switched(ZONE_PINS["lawn"], True)
    with caplog.at_level(logging.ERROR):
        time.sleep(2.0)  # the event loop is stuck: no scheduling pass runs meanwhile
    assert rig.on_pins() == []
    pump_off = rig.switched(PUMP_PIN, False)
    lawn_off = rig.switched(ZONE_PINS["lawn"], False)
    assert pump_off <= lawn_off  # the guard too switches the pump first
    assert lawn_off < opened + 2.0
    assert "deadline guard" in caplog.text
    # The loop runs again: it learns what happened and relays may switch on again.
    await asyncio.sleep(0.05)
    assert "deadline guard" in controller.state()["fault"]
    await call(controller, "run", {"zone": "beds", "seconds": 0.05})
    await wait_until(lambda: rig.is_on("beds"))
    await wait_until(lambda: rig.on_pins() == [])
