"""``pi-agent safe-off`` and its pieces: the lenient plan, the order, holding pins, the CLI."""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from gpiozero import LED
from gpiozero.pins.mock import MockFactory, MockPWMPin
from pi_secure_ws_testing.pins import PinLog

from pi_agent import safe_off
from pi_agent.pins import hold_inactive

GARDEN = """
[agent]
hardware = "mock"

[sprinklers.pump]
pin = 19
lag = 0.3

[[sprinklers.zone]]
id = "lawn"
pin = 5

[[sprinklers.zone]]
id = "beds"
pin = 6
active_high = false

[[light]]
id = "porch"
pin = 17

[[light]]
id = "hall"
pin = 18
startup = "restore"
"""


def plan(text: str) -> safe_off.SafeOffPlan:
    return safe_off.plan_from_toml(tomllib.loads(text))


def test_plan_is_the_pump_then_its_valves_and_the_lights_that_start_off() -> None:
    result = plan(GARDEN)
    assert [(o.key, o.pin, o.active_high) for o in result.first] == [
        ("sprinklers.pump.pin", 19, True)
    ]
    assert [(o.pin, o.active_high) for o in result.then] == [(5, True), (6, False), (17, True)]
    assert result.lag == 0.3
    assert result.mock
    assert result.problems == ()


def test_plan_is_lenient_a_broken_entry_never_keeps_the_others_on() -> None:
    result = plan(
        """
[sprinklers]
no_such_option = true
[sprinklers.pump]
pin = true
[[sprinklers.zone]]
pin = 99
[[sprinklers.zone]]
pin = 5
active_high = "yes"
[[sprinklers.zone]]
pin = 6
[[sprinklers.zone]]
pin = 6
"""
    )
    assert [o.pin for o in result.first] == []
    assert [o.pin for o in result.then] == [6]  # listed twice, switched once
    assert len(result.problems) == 3
    assert not result.mock  # real GPIO unless agent.toml says mock


@pytest.mark.parametrize("lag", ["nan", "-3", "1e9", '"soon"'])
def test_a_strange_lag_is_bounded(lag: str) -> None:
    text = GARDEN.replace("lag = 0.3", f"lag = {lag}")
    assert 0.0 <= plan(text).lag <= safe_off.MAX_LAG


def test_drive_off_order_lag_and_held_pins() -> None:
    factory = MockFactory(pin_class=MockPWMPin)
    # Left on by a crashed agent: the kernel kept the levels.
    for number, level in ((19, True), (5, True), (6, False)):
        pin = factory.pin(number)
        pin.function = "output"
        pin.state = level
    slept: list[float] = []
    failures = safe_off.drive_off(plan(GARDEN), factory, sleep=slept.append)
    assert failures == []
    assert slept == [0.3]
    assert factory.pin(19).state == 0
    assert factory.pin(5).state == 0
    assert factory.pin(6).state == 1  # active-low: off is high
    for number in (19, 5, 6, 17):
        assert factory.pin(number).function == "output"  # held, never a floating input
    assert factory.pin(18).function == "input"  # startup = "restore": not ours to touch


def test_a_failing_pin_is_retried_reported_and_the_others_still_go_off() -> None:
    class Broken(MockPWMPin):  # type: ignore[misc]
        def _set_function(self, value: Any) -> None:
            if self.info.name == "GPIO5" and value == "output":
                raise OSError("GPIO busy (simulated)")
            super()._set_function(value)

    factory = MockFactory(pin_class=Broken)
    failures = safe_off.drive_off(plan(GARDEN), factory, sleep=lambda _s: None)
    assert len(failures) == 1
    assert "GPIO5" in failures[0]
    assert f"after {safe_off.RETRIES} tries" in failures[0]
    assert factory.pin(6).state == 1


def test_hold_inactive_keeps_an_output_through_close() -> None:
    factory = MockFactory(pin_class=MockPWMPin)
    relay = LED(21, pin_factory=factory, initial_value=True)
    hold_inactive(relay)
    relay.close()
    assert factory.pin(21).function == "output"
    assert factory.pin(21).state == 0
    # The pin is free for the next user (the restarted agent, safe-off).
    LED(21, pin_factory=factory).close()


def write_config(tmp_path: Path, text: str) -> Path:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "agent.toml").write_text(text)
    return config_dir


def run_safe_off(config_dir: Path, pin_log: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv or [sys.executable, "-I", "-m", "pi_agent.safe_off", "--config-dir", str(config_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PI_AGENT_PIN_LOG": str(pin_log), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_the_module_entry_the_unit_runs(tmp_path: Path) -> None:
    config_dir = write_config(tmp_path, GARDEN)
    pins = PinLog(tmp_path / "pins.log", {19: True, 5: True, 6: False, 17: True})
    for gpio in (19, 5, 6):
        pins.seed_on(gpio)
    begun = time.monotonic()
    result = run_safe_off(config_dir, pins.path)
    assert result.returncode == 0, result.stderr
    assert "4 output(s) at their inactive level, 0 failed" in result.stdout
    assert pins.all_off()
    # The pump went off first, the valves after its lag.
    assert pins.off_at(5, begun) - pins.off_at(19, begun) >= 0.3
    # Nothing else was touched: no state directory, no files besides agent.toml.
    assert sorted(p.name for p in config_dir.iterdir()) == ["agent.toml"]


def test_the_cli_subcommand(tmp_path: Path) -> None:
    config_dir = write_config(tmp_path, GARDEN)
    pin_log = tmp_path / "pins.log"
    pi_agent = str(Path(sys.executable).parent / "pi-agent")
    result = run_safe_off(
        config_dir, pin_log, pi_agent, "safe-off", "--config-dir", str(config_dir)
    )
    assert result.returncode == 0, result.stderr
    assert "4 output(s)" in result.stdout


@pytest.mark.parametrize(
    "content", [None, b"\xff\xfe", b"[agent\n"], ids=["missing", "not-utf8", "not-toml"]
)
def test_no_usable_agent_toml_is_exit_78_and_touches_nothing(
    tmp_path: Path, content: bytes | None
) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    if content is not None:
        (config_dir / "agent.toml").write_bytes(content)
    pin_log = tmp_path / "pins.log"
    result = run_safe_off(config_dir, pin_log)
    assert result.returncode == 78
    assert "no relay was touched" in result.stderr
    assert "Traceback" not in result.stderr
    assert not pin_log.exists()


async def test_stop_refuses_commands_before_the_relays_go_off(tmp_path: Path) -> None:
    """While the valves wait for the pump's lag, a command is answered "refused", not obeyed."""
    import asyncio

    from pi_secure_ws_protocol.errors import CommandError
    from pi_secure_ws_testing.agent import running_agent

    toml = """
[sprinklers.pump]
pin = 19
lead = 0.0
lag = 0.5

[[sprinklers.zone]]
id = "lawn"
pin = 5
"""
    async with running_agent(tmp_path / "agent", toml) as agent:
        client = await agent.connected_client()
        await client.call("sprinklers", "run", {"zone": "lawn", "seconds": 60})
        factory = agent.app.devices["sprinklers"]._relays()[0]._output.pin_factory
        await asyncio.sleep(1.2)  # min_switch_interval and the pump's lead
        assert factory.pin(19).state == 1
        stopping = asyncio.create_task(agent.app.stop())
        await asyncio.sleep(0.1)  # the pump is off, the valve waits for the lag
        assert factory.pin(19).state == 0
        assert factory.pin(5).state == 1
        with pytest.raises(CommandError) as refused:
            await client.call("sprinklers", "run", {"zone": "lawn", "seconds": 60})
        assert refused.value.code == "refused"
        assert "shutting down" in refused.value.message
        await stopping
        assert factory.pin(5).state == 0
        assert factory.pin(5).function == "output"
