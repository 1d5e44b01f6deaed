"""Home Assistant side helpers: what a user types, what zeroconf finds and what a completed
pairing stores, for a test agent.

Imports Home Assistant and the integration: only for Home Assistant tests and benchmarks.
"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from custom_components.pi_secure_ws.const import (
    CONF_CA_PEM,
    CONF_CLIENT_ID,
    CONF_FINGERPRINT,
    CONF_SECRET,
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
