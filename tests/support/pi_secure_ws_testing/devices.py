"""Calling an agent device's actions in process, the way the server does."""

from __future__ import annotations

from typing import Any

from pi_secure_ws_protocol.const import Role

from pi_agent.devices.base import CallContext, Device

CONTROL = CallContext(client_id="homeassistant", role=Role.CONTROL, source="127.0.0.1")
VIEWER = CallContext(client_id="wall_panel", role=Role.VIEWER, source="127.0.0.1")
ADMIN = CallContext(client_id="owner", role=Role.ADMIN, source="127.0.0.1")


async def call(
    device: Device, action: str, params: dict[str, Any] | None = None, who: CallContext = CONTROL
) -> Any:
    """The server's path to an action: the caller's role, the action's schema, its handler."""
    spec = device.actions()[action]
    assert who.role >= spec.role, f"{who.role.name} may not call {device.kind}.{action}"
    return await spec.handler(spec.schema(params or {}), who)
