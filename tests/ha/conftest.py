"""Fixtures for the Home Assistant tests: a real agent on loopback (mock GPIO, real TLS and SCRAM).

Nothing of ours is mocked: the integration pairs with and talks to a started ``AgentApp`` whose
certificate authority and client secret are freshly generated in the test's tmp_path.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "agent"))

from agent_harness import RunningAgent, running_agent  # noqa: E402

from custom_components.pi_secure_ws.const import (  # noqa: E402
    CONF_CA_PEM,
    CONF_CLIENT_ID,
    CONF_FINGERPRINT,
    CONF_SECRET,
    DOMAIN,
)
from pi_agent import pki  # noqa: E402

# Every device kind, on mock pins; short times so tests stay fast.
FULL_TOML = """
[[light]]
id = "porch"
name = "Porch"
pin = 17
dimmable = true

[[light]]
id = "shed"
name = "Shed"
pin = 27

[sprinklers]
max_concurrent = 1
max_run_seconds = 600

[[sprinklers.zone]]
id = "lawn"
name = "Lawn"
pin = 5
default_seconds = 60
max_seconds = 300

[[sprinklers.zone]]
id = "beds"
name = "Beds"
pin = 6

[sprinklers.pump]
pin = 13
lead = 0
lag = 0

[camera]
backend = "test_pattern"
width = 160
height = 96
max_fps = 10
"""


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


def entry_data(agent: RunningAgent, client_id: str = "homeassistant") -> dict[str, Any]:
    """What a completed pairing stores."""
    return {
        CONF_HOST: agent.host,
        CONF_PORT: agent.port,
        CONF_CLIENT_ID: client_id,
        CONF_SECRET: agent.secrets[client_id],
        CONF_FINGERPRINT: agent.fingerprint,
        CONF_CA_PEM: pki.ca_pem(agent.config_dir),
    }


def agent_id(agent: RunningAgent) -> str:
    return (agent.config_dir / "agent_id").read_text().strip()


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


async def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Let the loop run until ``condition()`` holds; fail with a clear message otherwise."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
