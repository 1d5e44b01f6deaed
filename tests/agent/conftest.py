"""Fixtures for the agent tests: a real agent on loopback, real TLS, real SCRAM.

The harness itself is the shared test-support package (tests/support, ``pi_secure_ws_testing``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from pi_secure_ws_protocol.client import AgentClient
from pi_secure_ws_testing.agent import AgentFactory, RunningAgent, running_agent


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[RunningAgent]:
    """An agent with the client ``homeassistant`` (control) and no devices but ``system``."""
    async with running_agent(tmp_path / "agent") as running:
        yield running


@pytest.fixture
def agent_factory(tmp_path: Path) -> AgentFactory:
    """``async with agent_factory(toml, clients={...}) as agent:`` for custom configs."""
    counter = iter(range(1000))

    def factory(toml: str = "", **kwargs: Any) -> AbstractAsyncContextManager[RunningAgent]:
        return running_agent(tmp_path / f"agent{next(counter)}", toml, **kwargs)

    return factory


@pytest.fixture
async def closing() -> AsyncIterator[list[AgentClient]]:
    """Clients a test made by hand (not through ``agent.client()``): closed at its end."""
    clients: list[AgentClient] = []
    yield clients
    for client in clients:
        await client.close()
