"""One protocol package in one process: the in-process agent and the integration share it.

The folder custom_components/pi_secure_ws/protocol is the agent's ``pi_secure_ws_protocol`` too.
Loaded under both names it would be two copies (two ``Role`` enums, two ``InvalidAuth``
classes); the test-support plugin maps the agent's name onto the integration's modules before
anything imports either (pi_secure_ws_testing/plugin.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pi_secure_ws_protocol
import pytest
from pi_secure_ws_protocol.client import AgentClient as AgentSideClient
from pi_secure_ws_protocol.const import Role as AgentSideRole
from pi_secure_ws_protocol.errors import InvalidAuth as AgentSideInvalidAuth
from pi_secure_ws_testing.agent import RunningAgent

from custom_components.pi_secure_ws import protocol
from custom_components.pi_secure_ws.protocol.client import AgentClient
from custom_components.pi_secure_ws.protocol.const import Role
from custom_components.pi_secure_ws.protocol.errors import InvalidAuth
from custom_components.pi_secure_ws.protocol.secret import generate_secret
from pi_agent.credentials import CredentialStore

PROTOCOL = Path(protocol.__file__ or "").resolve().parent


def test_each_protocol_file_is_one_module_object() -> None:
    loaded: dict[Path, dict[int, list[str]]] = {}
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().is_relative_to(PROTOCOL):
            loaded.setdefault(Path(file).resolve(), {}).setdefault(id(module), []).append(name)
    # Every module of the package is there (the plugin imported them all) ...
    assert set(loaded) == {path.resolve() for path in PROTOCOL.rglob("*.py")}
    # ... each once, under both names.
    twice = {
        str(path): list(objects.values()) for path, objects in loaded.items() if len(objects) > 1
    }
    assert not twice, f"protocol modules loaded twice: {twice}"
    for objects in loaded.values():
        (names,) = objects.values()
        assert any(name.startswith("custom_components.pi_secure_ws.protocol") for name in names)
        assert any(name.startswith("pi_secure_ws_protocol") for name in names)


def test_the_agents_names_are_the_integrations_objects() -> None:
    assert pi_secure_ws_protocol is protocol
    assert AgentSideRole is Role
    assert AgentSideInvalidAuth is InvalidAuth
    assert AgentSideClient is AgentClient
    # The modules keep the integration's names (its logger names, its relative imports).
    assert pi_secure_ws_protocol.__name__ == "custom_components.pi_secure_ws.protocol"


async def test_the_in_process_agent_and_the_integration_agree(agent: RunningAgent) -> None:
    # A role the agent stored is the integration's Role.
    record = CredentialStore.load(agent.config_dir / "clients.json").get("homeassistant")
    assert record is not None
    assert record.role is Role.CONTROL
    # The harness's client (the agent side's name) is the integration's class, and a refused
    # login is the integration's InvalidAuth: its ``except InvalidAuth`` catches it.
    client = agent.client(secret=generate_secret())
    assert type(client) is AgentClient
    with pytest.raises(InvalidAuth):
        await client.connect()
