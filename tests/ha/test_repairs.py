"""The certificate repair issue lasts exactly as long as its entry has the problem."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from homeassistant.config_entries import ConfigEntryDisabler, ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from pi_secure_ws_testing.agent import RunningAgent, running_agent
from pi_secure_ws_testing.waiting import wait_for
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_secure_ws.const import CONF_FINGERPRINT, DOMAIN
from pi_agent import pki


def issue(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"certificate_mismatch_{entry.entry_id}")


@asynccontextmanager
async def new_certificates(agent: RunningAgent) -> AsyncIterator[str]:
    """The agent restarted on its port with a new certificate authority (its fingerprint)."""
    port = agent.port
    await agent.app.stop()
    fingerprint = pki.write_pki(agent.config_dir, "test", ["localhost"], ["127.0.0.1"])
    async with running_agent(agent.config_dir, prepared=True, port=port):
        yield fingerprint


async def test_unloading_the_entry_removes_the_issue_its_session_raised(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    async with new_certificates(agent):
        await wait_for(lambda: issue(hass, loaded_entry) is not None)
        assert await hass.config_entries.async_unload(loaded_entry.entry_id)
        assert issue(hass, loaded_entry) is None


async def test_deleting_an_entry_that_failed_setup_removes_its_issue(
    hass: HomeAssistant, agent: RunningAgent, config_entry: MockConfigEntry
) -> None:
    config_entry.add_to_hass(hass)
    async with new_certificates(agent):
        await hass.config_entries.async_setup(config_entry.entry_id)
        assert config_entry.state is ConfigEntryState.SETUP_ERROR
        assert issue(hass, config_entry) is not None
        await hass.config_entries.async_remove(config_entry.entry_id)
        assert issue(hass, config_entry) is None


async def test_disabling_an_entry_that_failed_setup_removes_its_issue(
    hass: HomeAssistant, agent: RunningAgent, config_entry: MockConfigEntry
) -> None:
    """A failed entry is never unloaded by the integration; disabling it still clears up."""
    config_entry.add_to_hass(hass)
    async with new_certificates(agent):
        await hass.config_entries.async_setup(config_entry.entry_id)
        assert issue(hass, config_entry) is not None
        await hass.config_entries.async_set_disabled_by(
            config_entry.entry_id, ConfigEntryDisabler.USER
        )
        await hass.async_block_till_done()
        assert issue(hass, config_entry) is None


async def test_repinning_the_new_certificate_resolves_the_issue(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """What the issue tells the user to do (Reconfigure with the new fingerprint) clears it."""
    async with new_certificates(agent) as fingerprint:
        await wait_for(lambda: issue(hass, loaded_entry) is not None)
        result = await loaded_entry.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {
                CONF_HOST: loaded_entry.data[CONF_HOST],
                CONF_PORT: loaded_entry.data[CONF_PORT],
                CONF_FINGERPRINT: fingerprint,
            },
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
        assert loaded_entry.state is ConfigEntryState.LOADED
        assert issue(hass, loaded_entry) is None
        assert await hass.config_entries.async_unload(loaded_entry.entry_id)
