"""Home Assistant side helpers: what a user types, what zeroconf finds and what a completed
pairing stores, for a test agent.

Imports Home Assistant and the integration: only for Home Assistant tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import ip_address
from typing import Any

from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_secure_ws.const import (
    CONF_CA_PEM,
    CONF_CLIENT_ID,
    CONF_FINGERPRINT,
    CONF_SECRET,
    DOMAIN,
)
from pi_agent import pki

from .agent import RunningAgent


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
    """The agent's unique id (the config entry's unique_id)."""
    return (agent.config_dir / "agent_id").read_text().strip()


def user_input(agent: RunningAgent, **overrides: Any) -> dict[str, Any]:
    """The config flow's user step, filled in for ``agent``."""
    return {
        CONF_HOST: agent.host,
        CONF_PORT: agent.port,
        CONF_SECRET: agent.secret,
        CONF_CLIENT_ID: "homeassistant",
        **overrides,
    }


def zeroconf_info(agent: RunningAgent, **properties: str) -> ZeroconfServiceInfo:
    """What Home Assistant's zeroconf hands the config flow for ``agent``'s announcement."""
    return ZeroconfServiceInfo(
        ip_address=ip_address(agent.host),
        ip_addresses=[ip_address(agent.host)],
        hostname="testpi.local.",
        name="Test Pi._pi-secure-ws._tcp.local.",
        port=agent.port,
        type="_pi-secure-ws._tcp.local.",
        properties={"version": "0.1.0", **properties},
    )


def mock_entry(
    agent: RunningAgent,
    data: Mapping[str, Any] | None = None,
    *,
    client_id: str = "homeassistant",
    title: str = "Test Pi",
) -> MockConfigEntry:
    """A config entry paired with ``agent`` (not added to ``hass`` yet); ``data`` overrides
    what the pairing stored (a wrong secret, a moved host)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        unique_id=agent_id(agent),
        data={**entry_data(agent, client_id), **(data or {})},
    )


def registry_entry(hass: HomeAssistant, entity_id: str) -> er.RegistryEntry:
    """``entity_id``'s entity registry entry; fails clearly when it is not registered."""
    entry = er.async_get(hass).async_get(entity_id)
    assert entry is not None, f"{entity_id} is not in the entity registry"
    return entry
