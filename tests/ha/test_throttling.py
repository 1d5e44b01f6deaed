"""The firmware's throttling flags as problem sensors, read through a real agent.

Only the Pi's firmware is simulated: a ``vcgencmd`` on PATH that answers as a Pi with a weak power
supply does (``throttled=0x50005``: under-voltage and throttling now, both also since boot).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pi_secure_ws_testing.agent import RunningAgent
from pytest_homeassistant_custom_component.common import MockConfigEntry


@pytest.fixture(autouse=True)
def weak_power_supply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the agent starts (autouse fixtures come first): a firmware that reports trouble."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    vcgencmd = bin_dir / "vcgencmd"
    vcgencmd.write_text("#!/bin/sh\necho throttled=0x50005\n")
    vcgencmd.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path('/usr/bin')}:{Path('/bin')}")


async def test_under_voltage_and_throttling_are_problems(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    assert "throttled" in agent.app.devices["system"].capabilities()["sensors"]
    assert hass.states.get("binary_sensor.test_pi_under_voltage").state == STATE_ON
    assert hass.states.get("binary_sensor.test_pi_throttled").state == STATE_ON
    # The rarer flags exist but start disabled; enabled, they read the since-boot half.
    registry = er.async_get(hass)
    for entity_id in (
        "binary_sensor.test_pi_frequency_capped",
        "binary_sensor.test_pi_under_voltage_since_boot",
    ):
        entry = registry.async_get(entity_id)
        assert entry is not None
        assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
        registry.async_update_entity(entity_id, disabled_by=None)
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.test_pi_frequency_capped").state == STATE_OFF
    assert hass.states.get("binary_sensor.test_pi_under_voltage_since_boot").state == STATE_ON
