"""GPIO lights driven through their action handlers, asserting the real MockFactory pin levels."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from gpiozero.pins.mock import MockFactory, MockPWMPin
from pi_secure_ws_testing.devices import call
from pi_secure_ws_testing.waiting import wait_until

from pi_agent.devices import light_params, lights
from pi_agent.devices.base import Device, DeviceContext, DeviceError, Refused

PORCH_PIN = 17
DESK_PIN = 18
RELAY_PIN = 22


class FailingPin(MockPWMPin):  # type: ignore[misc]
    """A mock pin that can be told to fail like broken hardware."""

    def __init__(self, factory: Any, info: Any) -> None:
        super().__init__(factory, info)
        self.fail_writes = False

    def _set_state(self, value: Any) -> None:
        if self.fail_writes:
            raise OSError("GPIO write failed (simulated)")
        super()._set_state(value)


def light_config(**overrides: Any) -> dict[str, Any]:
    return {"id": "porch", "name": "Porch", "pin": PORCH_PIN, **overrides}


def make_ctx(tmp_path: Path, factory: Any = None) -> DeviceContext:
    return DeviceContext(
        pin_factory=factory if factory is not None else MockFactory(pin_class=MockPWMPin),
        state_dir=tmp_path / "state",
        mock=True,
        config_dir=tmp_path,
    )


class Rig:
    """Lights built from a config section on one mock factory, stopped at the end of a test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.devices: list[Device] = []
        self.factory: Any = None

    def create(self, section: list[dict[str, Any]]) -> dict[str, Device]:
        self.factory = MockFactory(pin_class=FailingPin)
        created = lights.create(
            lights.CONFIG_SCHEMA(section), make_ctx(self.tmp_path, self.factory)
        )
        self.devices.extend(created)
        return {device.id: device for device in created}

    def pin(self, number: int) -> Any:
        return self.factory.pin(number)

    async def stop(self) -> None:
        for device in self.devices:
            await device.stop()
        self.devices.clear()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = Rig(tmp_path)
    yield rig
    await rig.stop()


async def test_relay_light_switches_its_pin_and_pushes_every_change(rig: Rig) -> None:
    porch = rig.create([light_config()])["porch"]
    pushed: list[dict[str, Any]] = []
    porch.add_listener(lambda device: pushed.append(device.state()))
    pin = rig.pin(PORCH_PIN)
    assert pin.state == 0
    assert porch.describe()["kind"] == "light"
    assert porch.capabilities() == {
        "dimmable": False,
        "supports_transition": False,
        "effects": ["blink"],
    }

    await call(porch, "turn_on")
    assert pin.state == 1
    await call(porch, "toggle")
    assert pin.state == 0
    await call(porch, "toggle")
    assert pin.state == 1
    await call(porch, "turn_off")
    assert pin.state == 0
    assert [state["on"] for state in pushed] == [True, False, True, False]
    assert "brightness" not in pushed[0]


async def test_active_low_relay_drives_the_pin_low_for_on(rig: Rig) -> None:
    relay = rig.create([light_config(id="relay", pin=RELAY_PIN, active_high=False)])["relay"]
    pin = rig.pin(RELAY_PIN)
    assert pin.state == 1  # off from the start: high on an active-low board
    await call(relay, "turn_on")
    assert pin.state == 0
    await call(relay, "turn_off")
    assert pin.state == 1


async def test_dimmable_light_sets_the_duty_cycle(rig: Rig) -> None:
    desk = rig.create([light_config(id="desk", pin=DESK_PIN, dimmable=True, pwm_frequency=200)])[
        "desk"
    ]
    pin = rig.pin(DESK_PIN)
    assert pin.frequency == 200
    assert desk.capabilities()["supports_transition"] is True
    assert desk.capabilities()["effects"] == ["blink", "pulse"]

    await call(desk, "turn_on", {"brightness": 128})
    assert pin.state == pytest.approx(128 / 255)
    assert desk.state() == {"on": True, "brightness": 128, "effect": None}
    await call(desk, "turn_off")
    assert pin.state == 0
    assert desk.state()["brightness"] == 0
    # On again without a brightness: the last level comes back.
    await call(desk, "turn_on")
    assert pin.state == pytest.approx(128 / 255)
    await call(desk, "turn_on", {"brightness": 0})
    assert pin.state == 0
    assert desk.state()["on"] is False


async def test_active_low_dimmable_light_inverts_the_duty_cycle(rig: Rig) -> None:
    desk = rig.create([light_config(id="desk", pin=DESK_PIN, dimmable=True, active_high=False)])[
        "desk"
    ]
    pin = rig.pin(DESK_PIN)
    assert pin.state == pytest.approx(1.0)
    assert pin.frequency == light_params.DEFAULT_PWM_FREQUENCY
    await call(desk, "turn_on", {"brightness": 64})
    assert pin.state == pytest.approx(1 - 64 / 255)


async def test_fade_passes_through_intermediate_levels_to_the_target(rig: Rig) -> None:
    desk = rig.create([light_config(id="desk", pin=DESK_PIN, dimmable=True)])["desk"]
    pin = rig.pin(DESK_PIN)
    pin.clear_states()

    await call(desk, "turn_on", {"brightness": 255, "transition": 0.3})
    # The state reports the target at once; the pin gets there step by step.
    assert desk.state() == {"on": True, "brightness": 255, "effect": None}
    await wait_until(lambda: pin.state == pytest.approx(1.0))
    levels = [entry.state for entry in pin.states[1:]]
    assert len([level for level in levels if 0 < level < 1]) >= 3
    assert levels == sorted(levels)

    pin.clear_states()
    await call(desk, "turn_off", {"transition": 0.2})
    await wait_until(lambda: pin.state == 0)
    levels = [entry.state for entry in pin.states[1:]]
    assert any(0 < level < 1 for level in levels)
    assert levels == sorted(levels, reverse=True)


async def test_new_command_cancels_a_running_fade(rig: Rig) -> None:
    desk = rig.create([light_config(id="desk", pin=DESK_PIN, dimmable=True)])["desk"]
    pin = rig.pin(DESK_PIN)
    await call(desk, "turn_on", {"transition": 5.0})
    await asyncio.sleep(0.1)
    await call(desk, "turn_on", {"brightness": 50})
    assert pin.state == pytest.approx(50 / 255)
    await asyncio.sleep(0.15)
    assert pin.state == pytest.approx(50 / 255)


async def test_blink_with_a_count_ends_off(rig: Rig) -> None:
    porch = rig.create([light_config()])["porch"]
    pin = rig.pin(PORCH_PIN)
    pin.clear_states()
    pushed: list[dict[str, Any]] = []
    porch.add_listener(lambda device: pushed.append(device.state()))

    await call(porch, "blink", {"on_time": 0.03, "off_time": 0.03, "count": 2})
    assert porch.state() == {"on": True, "effect": "blink"}
    await wait_until(lambda: porch.state()["effect"] is None)
    assert [entry.state for entry in pin.states] == [0, 1, 0, 1, 0]
    assert pin.state == 0
    assert pushed == [{"on": True, "effect": "blink"}, {"on": False, "effect": None}]


async def test_endless_blink_stops_on_the_next_command(rig: Rig) -> None:
    porch = rig.create([light_config()])["porch"]
    pin = rig.pin(PORCH_PIN)
    pin.clear_states()
    await call(porch, "blink", {"on_time": 0.02, "off_time": 0.02})
    await wait_until(lambda: len(pin.states) >= 6)
    await call(porch, "turn_off")
    changes = len(pin.states)
    await asyncio.sleep(0.1)
    assert pin.state == 0
    assert len(pin.states) == changes
    assert porch.state() == {"on": False, "effect": None}


async def test_pulse_fades_up_to_the_peak_and_down(rig: Rig) -> None:
    desk = rig.create([light_config(id="desk", pin=DESK_PIN, dimmable=True)])["desk"]
    pin = rig.pin(DESK_PIN)
    pin.clear_states()
    await call(desk, "pulse", {"fade_in": 0.1, "fade_out": 0.1, "count": 1, "brightness": 200})
    assert desk.state() == {"on": True, "brightness": 200, "effect": "pulse"}
    await wait_until(lambda: desk.state()["effect"] is None)
    levels = [entry.state for entry in pin.states]
    assert max(levels) == pytest.approx(200 / 255)
    assert any(0 < level < 200 / 255 for level in levels)
    assert pin.state == 0


async def test_non_dimmable_light_refuses_brightness_fades_and_pulse(rig: Rig) -> None:
    porch = rig.create([light_config()])["porch"]
    pin = rig.pin(PORCH_PIN)
    with pytest.raises(Refused, match="not dimmable: brightness"):
        await call(porch, "turn_on", {"brightness": 100})
    with pytest.raises(Refused, match="not dimmable: it cannot fade"):
        await call(porch, "turn_off", {"transition": 2})
    with pytest.raises(Refused, match="not dimmable: it cannot pulse"):
        await call(porch, "pulse")
    assert pin.state == 0


@pytest.mark.parametrize(
    ("action", "params", "key"),
    [
        ("turn_on", {"brightness": 256}, "brightness"),
        ("turn_on", {"brightness": 1.5}, "brightness"),
        ("turn_on", {"transition": 61}, "transition"),
        ("turn_on", {"transition": float("nan")}, "transition"),
        ("blink", {"count": 0}, "count"),
        ("blink", {"on_time": 0}, "on_time"),
        ("turn_off", {"colour": "red"}, "colour"),
    ],
)
async def test_bad_parameters_name_the_key(
    rig: Rig, action: str, params: dict[str, Any], key: str
) -> None:
    desk = rig.create([light_config(id="desk", pin=DESK_PIN, dimmable=True)])["desk"]
    with pytest.raises(vol.Invalid) as info:
        await call(desk, action, params)
    assert f"['{key}']" in str(info.value)


async def test_restore_brings_back_the_last_state_after_a_restart(rig: Rig) -> None:
    section = [
        light_config(id="desk", pin=DESK_PIN, dimmable=True, startup="restore"),
        light_config(startup="restore"),
    ]
    devices = rig.create(section)
    await call(devices["desk"], "turn_on", {"brightness": 77})
    await call(devices["porch"], "turn_on")
    await call(devices["porch"], "turn_off")
    await rig.stop()
    state_file = rig.tmp_path / "state" / lights.STATE_FILE_NAME
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600

    devices = rig.create(section)
    assert rig.pin(DESK_PIN).state == pytest.approx(77 / 255)
    assert devices["desk"].state() == {"on": True, "brightness": 77, "effect": None}
    assert rig.pin(PORCH_PIN).state == 0
    assert devices["porch"].state()["on"] is False


async def test_startup_on_and_off_ignore_the_saved_state(rig: Rig) -> None:
    state_dir = rig.tmp_path / "state"
    state_dir.mkdir()
    (state_dir / lights.STATE_FILE_NAME).write_text(
        json.dumps({"porch": {"on": True, "brightness": 255}})
    )
    rig.create([light_config(startup="off"), light_config(id="desk", pin=DESK_PIN, startup="on")])
    assert rig.pin(PORCH_PIN).state == 0
    assert rig.pin(DESK_PIN).state == 1


async def test_corrupt_state_file_is_logged_and_ignored(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    state_dir = rig.tmp_path / "state"
    state_dir.mkdir()
    (state_dir / lights.STATE_FILE_NAME).write_text("{not json")
    with caplog.at_level(logging.WARNING):
        porch = rig.create([light_config(startup="restore")])["porch"]
    assert "lights.json is corrupt" in caplog.text
    assert rig.pin(PORCH_PIN).state == 0
    # The next change replaces the damaged file with a good one.
    await call(porch, "turn_on")
    await rig.stop()
    saved = json.loads((state_dir / lights.STATE_FILE_NAME).read_text())
    assert saved["porch"] == {"on": True, "brightness": 255}


async def test_a_bad_saved_entry_is_ignored(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    state_dir = rig.tmp_path / "state"
    state_dir.mkdir()
    (state_dir / lights.STATE_FILE_NAME).write_text(
        json.dumps({"porch": {"on": "yes", "brightness": 255}, "desk": {"on": True}})
    )
    with caplog.at_level(logging.WARNING):
        rig.create(
            [
                light_config(startup="restore"),
                light_config(id="desk", pin=DESK_PIN, dimmable=True, startup="restore"),
            ]
        )
    assert "ignoring the saved state of light porch" in caplog.text
    assert "ignoring the saved state of light desk" in caplog.text
    assert rig.pin(PORCH_PIN).state == 0
    assert rig.pin(DESK_PIN).state == 0


@pytest.mark.parametrize(
    ("section", "path", "message"),
    [
        ([light_config(), light_config(pin=5)], [1, "id"], "used by another light"),
        ([light_config(pin=28)], [0, "pin"], "0-27"),
        ([light_config(pin=True)], [0, "pin"], "BCM GPIO number"),
        ([light_config(id="Porch Light")], [0, "id"], "lowercase"),
        ([light_config(pwm_frequency=200)], [0, "pwm_frequency"], "only dimmable"),
        ([light_config(startup="last")], [0, "startup"], "off, on, restore"),
        ([light_config(colour="red")], [0, "colour"], "extra keys"),
        ([{"id": "porch"}], [0, "pin"], "required"),
    ],
)
def test_config_errors_name_the_key(section: Any, path: list[Any], message: str) -> None:
    with pytest.raises(vol.MultipleInvalid) as info:
        lights.CONFIG_SCHEMA(section)
    error = info.value.errors[0]
    assert error.path == path
    assert message in str(error)


def test_config_defaults_and_used_pins() -> None:
    section = lights.CONFIG_SCHEMA([light_config(), {"id": "desk", "pin": DESK_PIN}])
    assert section[1] == {
        "id": "desk",
        "name": "desk",
        "pin": DESK_PIN,
        "dimmable": False,
        "active_high": True,
        "startup": "off",
    }
    assert lights.used_pins(section) == [("light[0].pin", PORCH_PIN), ("light[1].pin", DESK_PIN)]


async def test_commands_arriving_together_leave_one_consistent_state(rig: Rig) -> None:
    desk = rig.create([light_config(id="desk", pin=DESK_PIN, dimmable=True)])["desk"]
    pin = rig.pin(DESK_PIN)
    await asyncio.gather(
        call(desk, "turn_on", {"brightness": 255, "transition": 0.2}),
        call(desk, "blink", {"on_time": 0.02, "off_time": 0.02}),
        call(desk, "turn_on", {"brightness": 100}),
    )
    await asyncio.sleep(0.3)
    # The last command won and no fade or blink is still running behind it.
    assert desk.state() == {"on": True, "brightness": 100, "effect": None}
    assert pin.state == pytest.approx(100 / 255)


async def test_pin_failure_is_a_device_error_and_ends_a_fade_with_a_log_line(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    desk = rig.create([light_config(id="desk", pin=DESK_PIN, dimmable=True)])["desk"]
    pin = rig.pin(DESK_PIN)
    pin.fail_writes = True
    with pytest.raises(DeviceError, match=r"light 'desk': cannot drive GPIO18: GPIO write failed"):
        await call(desk, "turn_on")
    assert desk.state() == {"on": False, "brightness": 0, "effect": None}
    with caplog.at_level(logging.ERROR):
        await call(desk, "turn_off", {"transition": 0.1})
        await asyncio.sleep(0.05)
    assert "light desk: fade stopped: light 'desk': cannot drive GPIO18" in caplog.text
    pin.fail_writes = False
    await call(desk, "turn_on", {"brightness": 10})
    assert pin.state == pytest.approx(10 / 255)
