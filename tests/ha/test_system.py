"""The Pi's health sensors and the admin-only buttons; diagnostics."""

from __future__ import annotations

import asyncio

from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.button import SERVICE_PRESS
from homeassistant.const import ATTR_ENTITY_ID, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pi_secure_ws_testing.agent import RunningAgent
from pi_secure_ws_testing.ha import agent_id, entry_data
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.pi_secure_ws.const import CONF_SECRET, DOMAIN

RESTART = "button.test_pi_restart_agent"


async def test_health_sensors(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    registry = er.async_get(hass)
    memory = registry.async_get("sensor.test_pi_memory_used")
    assert memory is not None
    assert memory.entity_category is EntityCategory.DIAGNOSTIC
    used = agent.app.devices["system"].state()["memory"]["used_percent"]
    assert float(hass.states.get("sensor.test_pi_memory_used").state) == used
    assert float(hass.states.get("sensor.test_pi_free_disk_space").state) > 0

    # Noisy ones exist but start disabled.
    uptime = registry.async_get("sensor.test_pi_uptime")
    assert uptime is not None
    assert uptime.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert hass.states.get("sensor.test_pi_uptime") is None

    # Readings the Pi lacks (no firmware throttling flags in a container) are not created.
    capabilities = agent.app.devices["system"].capabilities()
    assert ("throttled" in capabilities["sensors"]) == (
        registry.async_get("binary_sensor.test_pi_under_voltage") is not None
    )
    # With hardware = "mock" the agent never reboots its host: no reboot button.
    assert registry.async_get("button.test_pi_reboot") is None


async def test_restart_needs_the_admin_role(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """The default control client is not offered what only admin may do."""
    assert er.async_get(hass).async_get(RESTART) is None
    assert hass.states.get(RESTART) is None


async def test_restart_as_admin(hass: HomeAssistant, agent: RunningAgent) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=agent_id(agent), data=entry_data(agent, "admin")
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await hass.services.async_call(
        BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: RESTART}, blocking=True
    )
    async with asyncio.timeout(5):
        await agent.app.stopped.wait()
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_diagnostics_redact_the_secret(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    agent: RunningAgent,
    loaded_entry: MockConfigEntry,
) -> None:
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    assert diagnostics["entry"]["data"][CONF_SECRET] == "**REDACTED**"
    assert agent.secret not in str(diagnostics)
    assert diagnostics["agent"]["agent_id"] == agent_id(agent)
    assert diagnostics["agent"]["role"] == "control"
    assert diagnostics["devices"]["porch"]["kind"] == "light"
    assert "lawn" in diagnostics["states"]["sprinklers"]["zones"]
    assert diagnostics["connection"]["connected"] is True
    assert diagnostics["connection"]["connects"] == 1
