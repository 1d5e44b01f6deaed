"""Fixtures for the Home Assistant tests: a real agent on loopback (mock GPIO, real TLS and SCRAM).

Nothing of ours is mocked: the integration pairs with and talks to a started ``AgentApp`` whose
certificate authority and client secret are freshly generated in the test's tmp_path. The harness
and helpers are the shared test-support package (tests/support, ``pi_secure_ws_testing``), whose
pytest plugin also makes the in-process agent and the integration share one protocol package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pi_secure_ws_testing.agent import RunningAgent, running_agent
from pi_secure_ws_testing.agent_toml import FULL_TOML
from pi_secure_ws_testing.ha import agent_id, entry_data
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_secure_ws.const import DOMAIN


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/pi_secure_ws."""


@pytest.fixture
def agent_toml() -> str:
    """The device part of agent.toml; a test module overrides this fixture to change it."""
    return FULL_TOML


@pytest.fixture
def agent_clients() -> dict[str, str]:
    return {"homeassistant": "control", "admin": "admin"}


@pytest.fixture
async def agent(
    socket_enabled: None, tmp_path: Path, agent_toml: str, agent_clients: dict[str, str]
) -> AsyncIterator[RunningAgent]:
    async with running_agent(tmp_path / "agent", agent_toml, clients=agent_clients) as running:
        yield running


@pytest.fixture
def config_entry(agent: RunningAgent) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN, title="Test Pi", unique_id=agent_id(agent), data=entry_data(agent)
    )


@pytest.fixture
async def loaded_entry(hass: HomeAssistant, config_entry: MockConfigEntry) -> MockConfigEntry:
    """The entry set up against the running agent, every entity enabled by default created."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    return config_entry
