"""What setup makes of each way the first login can fail: retry, reauth, or an error to read."""

from __future__ import annotations

import base64
import json

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from pi_secure_ws_protocol.errors import InvalidAuth
from pi_secure_ws_testing.agent import RunningAgent
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_secure_ws.const import DOMAIN


@pytest.fixture
def agent_toml() -> str:
    return "\n[blocklist]\nthreshold = 2\nbase_delay = 30.0\n"


def reauth_flows(hass: HomeAssistant) -> list[object]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


async def test_an_agent_that_cannot_prove_itself_is_an_error_not_a_reauth(
    hass: HomeAssistant, agent: RunningAgent, config_entry: MockConfigEntry
) -> None:
    """It accepted our proof but holds the wrong server key: not the agent we paired with."""
    clients_file = agent.config_dir / "clients.json"
    document = json.loads(clients_file.read_text())
    document["clients"]["homeassistant"]["server_key"] = base64.b64encode(bytes(32)).decode()
    clients_file.write_text(json.dumps(document))
    agent.app.reload_clients()

    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    assert config_entry.error_reason_translation_key == "server_auth_failed"
    assert not reauth_flows(hass)


async def test_a_blocked_address_retries_after_the_agents_delay(
    hass: HomeAssistant, agent: RunningAgent, config_entry: MockConfigEntry
) -> None:
    """Someone at our address failed too often: setup waits and retries, never asks the user."""
    for _ in range(2):
        with pytest.raises(InvalidAuth):
            await agent.client(secret="AAAA-BBBB-CCCC").connect()
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    assert config_entry.error_reason_translation_key == "blocked"
    placeholders = config_entry.error_reason_translation_placeholders or {}
    assert 1 <= int(placeholders["retry_after"]) <= 31
    assert not reauth_flows(hass)
