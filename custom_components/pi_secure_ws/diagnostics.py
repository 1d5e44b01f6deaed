"""Diagnostics: the entry (secret redacted), the agent's hello and states, connection counters."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .connection import PiSecureWsConfigEntry
from .const import CONF_SECRET

# The pinned fingerprint and CA certificate are public (the agent sends them to anyone who
# connects); the secret is the only credential Home Assistant stores. No private key is stored.
TO_REDACT = {CONF_SECRET}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PiSecureWsConfigEntry
) -> dict[str, Any]:
    connection = entry.runtime_data
    hello = connection.hello
    return {
        "entry": {
            "title": entry.title,
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
        },
        "agent": {
            "agent_id": hello.agent_id,
            "name": hello.name,
            "version": hello.version,
            "model": hello.model,
            "client_id": hello.client_id,
            "role": hello.role,
        },
        "devices": {
            device.id: {
                "kind": device.kind,
                "name": device.name,
                "capabilities": device.capabilities.to_wire(),
            }
            for device in hello.devices.values()
        },
        "states": {device: state.to_wire() for device, state in connection.states.items()},
        "connection": {
            "connected": connection.connected,
            **connection.stats.as_dict(),
            "client": dict(connection.client.stats),
        },
    }
