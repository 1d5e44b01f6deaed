"""Start a real agent on loopback with its own freshly generated CA, certificate and secrets.

Used by the agent tests, the Home Assistant tests and the benchmarks alike: nothing here is mocked
but the GPIO hardware (gpiozero's MockFactory, chosen by ``hardware = "mock"``).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pi_secure_ws_protocol.client import AgentClient
from pi_secure_ws_protocol.const import Role

from pi_agent import pki
from pi_agent.app import AgentApp
from pi_agent.credentials import CredentialStore
from pi_agent.fsutil import ensure_private_dir

BASE_TOML = """
[agent]
name = "Test Pi"
listen_host = "127.0.0.1"
port = 8765
hardware = "mock"
"""


def free_port() -> int:
    """A loopback port nothing listens on (the moment it is returned)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_config_dir(
    config_dir: Path,
    toml: str = "",
    *,
    clients: dict[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """Write a complete config dir; return (CA fingerprint, {client id: secret})."""
    ensure_private_dir(config_dir)
    config_dir.chmod(0o700)
    (config_dir / "agent.toml").write_text(BASE_TOML + toml)
    (config_dir / "agent_id").write_text(uuid.uuid4().hex + "\n")
    fingerprint = pki.write_pki(config_dir, "test", ["localhost"], ["127.0.0.1"])
    store = CredentialStore.create(config_dir / "clients.json")
    secrets: dict[str, str] = {}
    for client_id, role in (clients or {"homeassistant": "control"}).items():
        secrets[client_id] = store.add(client_id, Role.parse(role))
    store.save()
    return fingerprint, secrets


@dataclass
class RunningAgent:
    app: AgentApp
    config_dir: Path
    fingerprint: str
    secrets: dict[str, str]
    host: str = "127.0.0.1"
    clients: list[AgentClient] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.app.port

    @property
    def secret(self) -> str:
        return self.secrets["homeassistant"]

    def client(
        self,
        client_id: str = "homeassistant",
        secret: str | None = None,
        fingerprint: str | None = None,
        *,
        port: int | None = None,
        **kwargs: Any,
    ) -> AgentClient:
        """A client paired with this agent; ``port`` points it at another server (a fake agent)."""
        client = AgentClient(
            self.host,
            self.port if port is None else port,
            client_id=client_id,
            secret=self.secrets.get(client_id, "") if secret is None else secret,
            fingerprint=self.fingerprint if fingerprint is None else fingerprint,
            **kwargs,
        )
        self.clients.append(client)
        return client

    async def connected_client(
        self, client_id: str = "homeassistant", **kwargs: Any
    ) -> AgentClient:
        client = self.client(client_id, **kwargs)
        await client.connect()
        return client

    def add_client(self, client_id: str, role: str) -> str:
        store = CredentialStore.load(self.config_dir / "clients.json")
        secret = store.add(client_id, Role.parse(role))
        store.save()
        self.secrets[client_id] = secret
        return secret


@asynccontextmanager
async def running_agent(
    config_dir: Path,
    toml: str = "",
    *,
    clients: dict[str, str] | None = None,
    prepared: bool = False,
    port: int = 0,
) -> AsyncIterator[RunningAgent]:
    """A started agent; stopped (valves closed, sessions closed) on exit."""
    if prepared:
        fingerprint = pki.ca_fingerprint(config_dir)
        secrets: dict[str, str] = {}
    else:
        fingerprint, secrets = make_config_dir(config_dir, toml, clients=clients)
    app = AgentApp(config_dir, advertise=False, port=port)
    await app.start()
    agent = RunningAgent(app=app, config_dir=config_dir, fingerprint=fingerprint, secrets=secrets)
    try:
        yield agent
    finally:
        for client in agent.clients:
            await client.close()
        await app.stop()


# The ``agent_factory`` fixture: ``async with agent_factory(toml, clients=...) as agent``.
AgentFactory = Callable[..., AbstractAsyncContextManager[RunningAgent]]
