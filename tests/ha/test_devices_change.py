"""Devices the agent adds appear, and devices it drops leave the registry, without a reload.

The agent is really restarted with another agent.toml, on the same port: Home Assistant's session
reconnects by itself and learns the new device list from the agent's hello.
"""

from __future__ import annotations

from pathlib import Path

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pi_secure_ws_testing.agent import RunningAgent, running_agent
from pi_secure_ws_testing.agent_toml import FULL_TOML
from pi_secure_ws_testing.waiting import wait_for
from pytest_homeassistant_custom_component.common import MockConfigEntry

SHED = "light.test_pi_shed"
PORCH = "light.test_pi_porch"
SHED_TOML = '[[light]]\nid = "shed"\nname = "Shed"\npin = 27\n'
WITHOUT_SHED = FULL_TOML.replace(SHED_TOML, "")
assert WITHOUT_SHED != FULL_TOML


def write_devices(agent: RunningAgent, devices_toml: str) -> None:
    """Replace the device part of agent.toml, keeping its [agent] table."""
    path: Path = agent.config_dir / "agent.toml"
    text = path.read_text()
    head = text[: text.index("[[light]]")]
    path.write_text(head + devices_toml.lstrip("\n"))


async def test_a_dropped_device_leaves_and_an_added_one_arrives_without_a_reload(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    registry = er.async_get(hass)
    connection = loaded_entry.runtime_data
    assert registry.async_get(SHED) is not None
    port = agent.port

    await agent.app.stop()
    write_devices(agent, WITHOUT_SHED)
    async with running_agent(agent.config_dir, prepared=True, port=port):
        await wait_for(lambda: registry.async_get(SHED) is None)
        await hass.async_block_till_done()
        assert hass.states.get(SHED) is None
        await wait_for(lambda: hass.states.get(PORCH).state == "off")
        # The same session carried on: no reload built a new one.
        assert loaded_entry.runtime_data is connection
        assert loaded_entry.state is ConfigEntryState.LOADED
    await agent_gone(hass, loaded_entry)

    write_devices(agent, FULL_TOML)
    async with running_agent(agent.config_dir, prepared=True, port=port) as again:
        await wait_for(lambda: getattr(hass.states.get(SHED), "state", None) == "off")
        assert registry.async_get(SHED) is not None
        assert loaded_entry.runtime_data is connection
        # The new entity works: the command reaches the agent's pin.
        await hass.services.async_call(
            "light", SERVICE_TURN_ON, {ATTR_ENTITY_ID: SHED}, blocking=True
        )
        await wait_for(lambda: hass.states.get(SHED).state == "on")
        assert again.app.devices["shed"].state()["on"] is True
        assert await hass.config_entries.async_unload(loaded_entry.entry_id)


async def agent_gone(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Wait until the session noticed the agent is gone (before the next one starts)."""
    await wait_for(lambda: hass.states.get(PORCH).state == STATE_UNAVAILABLE)
    assert not entry.runtime_data.connected


async def test_entities_of_devices_dropped_while_away_are_removed_at_setup(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """Home Assistant was not connected when the device went: the next setup removes it,
    disabled-by-default entities of the devices still reported stay."""
    registry = er.async_get(hass)
    uptime = "sensor.test_pi_uptime"
    assert registry.async_get(uptime) is not None
    assert registry.async_get(uptime).disabled_by is not None
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    port = agent.port
    await agent.app.stop()
    write_devices(agent, WITHOUT_SHED)
    async with running_agent(agent.config_dir, prepared=True, port=port):
        assert registry.async_get(SHED) is not None  # still there while unloaded
        assert await hass.config_entries.async_setup(loaded_entry.entry_id)
        await hass.async_block_till_done()
        assert registry.async_get(SHED) is None
        assert registry.async_get(PORCH) is not None
        assert registry.async_get(uptime) is not None
        assert await hass.config_entries.async_unload(loaded_entry.entry_id)


async def test_a_device_whose_capabilities_changed_is_built_again(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """A zone added to the controller changes what its entities are: the entry reloads."""
    connection = loaded_entry.runtime_data
    assert hass.states.get("valve.test_pi_hedge") is None
    port = agent.port
    await agent.app.stop()
    hedge = '[[sprinklers.zone]]\nid = "hedge"\nname = "Hedge"\npin = 19\n\n[sprinklers.pump]'
    write_devices(agent, FULL_TOML.replace("[sprinklers.pump]", hedge))
    async with running_agent(agent.config_dir, prepared=True, port=port):
        await wait_for(lambda: hass.states.get("valve.test_pi_hedge") is not None)
        await hass.async_block_till_done()
        assert loaded_entry.state is ConfigEntryState.LOADED
        assert loaded_entry.runtime_data is not connection
        await wait_for(lambda: hass.states.get("valve.test_pi_hedge").state == "closed")
        assert await hass.config_entries.async_unload(loaded_entry.entry_id)


async def test_a_zone_removed_from_the_controller_leaves_the_registry(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """The controller changed (reload), and the reload's setup drops what no device provides."""
    registry = er.async_get(hass)
    beds = ("valve.test_pi_beds", "number.test_pi_beds_run_time", "sensor.test_pi_beds_run_ends")
    assert all(registry.async_get(entity_id) is not None for entity_id in beds)
    port = agent.port
    await agent.app.stop()
    beds_toml = '[[sprinklers.zone]]\nid = "beds"\nname = "Beds"\npin = 6\n\n'
    assert beds_toml in FULL_TOML
    write_devices(agent, FULL_TOML.replace(beds_toml, ""))
    async with running_agent(agent.config_dir, prepared=True, port=port):
        await wait_for(lambda: registry.async_get("valve.test_pi_beds") is None)
        await hass.async_block_till_done()
        assert all(registry.async_get(entity_id) is None for entity_id in beds)
        assert registry.async_get("valve.test_pi_lawn") is not None
        assert loaded_entry.state is ConfigEntryState.LOADED
        assert await hass.config_entries.async_unload(loaded_entry.entry_id)
