"""The agent as a real process: `pi-agent run`, signals, and the `pi-agent ctl` client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pi_secure_ws_protocol.client import AgentClient, Disconnected, StateChanged
from pi_secure_ws_protocol.const import CloseCode
from pi_secure_ws_protocol.devices import SprinklerState
from pi_secure_ws_protocol.errors import InvalidAuth
from pi_secure_ws_testing.agent import free_port, make_config_dir

PI_AGENT = [sys.executable, "-m", "pi_agent"]
SPRINKLER = """
[sprinklers]
[[sprinklers.zone]]
id = "lawn"
name = "Lawn"
pin = 22

[[light]]
id = "porch"
name = "Porch"
pin = 17
dimmable = true
"""


@dataclass
class AgentProcess:
    process: subprocess.Popen[str]
    config_dir: Path
    port: int
    fingerprint: str
    secrets: dict[str, str]

    def client(self, client_id: str = "homeassistant", **kwargs: Any) -> AgentClient:
        return AgentClient(
            "127.0.0.1",
            self.port,
            client_id=client_id,
            secret=kwargs.pop("secret", self.secrets.get(client_id, "")),
            fingerprint=self.fingerprint,
            **kwargs,
        )

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PI_AGENT, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **(env or {})},
            check=False,
        )


def wait_listening(port: int, process: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"agent exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("agent did not start listening")


@pytest.fixture
def agent_process(tmp_path: Path) -> Iterator[AgentProcess]:
    port = free_port()
    config_dir = tmp_path / "agent"
    fingerprint, secrets = make_config_dir(
        config_dir,
        SPRINKLER,
        clients={"homeassistant": "control", "panel": "viewer"},
    )
    toml = config_dir / "agent.toml"
    toml.write_text(toml.read_text().replace("port = 8765", f"port = {port}") + "")
    text = toml.read_text().replace('hardware = "mock"', 'hardware = "mock"\nzeroconf = false')
    toml.write_text(text)
    log = (tmp_path / "agent.log").open("w")
    process = subprocess.Popen(
        [*PI_AGENT, "run", "--config-dir", str(config_dir), "--log-level", "DEBUG"],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SDL_VIDEODRIVER": "dummy"},
    )
    try:
        wait_listening(port, process)
        yield AgentProcess(process, config_dir, port, fingerprint, secrets)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()


async def test_sigterm_closes_valves_and_says_going_away(
    agent_process: AgentProcess, closing: list[AgentClient], tmp_path: Path
) -> None:
    client = agent_process.client()
    closing.append(client)
    events: asyncio.Queue[Any] = asyncio.Queue()
    client.add_listener(events.put_nowait)
    await client.connect()
    await client.call("sprinklers", "run", {"zone": "lawn", "seconds": 600})
    controller = (await client.get_states())["sprinklers"]
    assert isinstance(controller, SprinklerState)
    assert controller.zones["lawn"].open is True
    ws = client._ws
    assert ws is not None

    started = time.monotonic()
    agent_process.process.send_signal(signal.SIGTERM)
    closed_state = None
    while True:
        event = await asyncio.wait_for(events.get(), 10)
        if (
            isinstance(event, StateChanged)
            and event.device == "sprinklers"
            and isinstance(event.state, SprinklerState)
            and not event.state.zones["lawn"].open
        ):
            closed_state = event.state
        if isinstance(event, Disconnected):
            break
    assert closed_state is not None, "no state with the valve closed before the agent went away"
    assert ws.close_code == CloseCode.GOING_AWAY
    assert agent_process.process.wait(10) == 0
    assert time.monotonic() - started < 5
    log = (tmp_path / "agent.log").read_text()
    assert "stopping: outputs are off" in log
    assert agent_process.secrets["homeassistant"] not in log


async def test_sighup_applies_a_rotation_to_the_running_agent(
    agent_process: AgentProcess, closing: list[AgentClient], tmp_path: Path
) -> None:
    ha = agent_process.client()
    panel = agent_process.client("panel")
    closing += [ha, panel]
    await ha.connect()
    await panel.connect()
    events: list[Any] = []
    ha.add_listener(events.append)

    result = agent_process.cli(
        "client", "rotate", "homeassistant", "--json", "--config-dir", str(agent_process.config_dir)
    )
    assert result.returncode == 0, result.stderr
    new_secret = json.loads(result.stdout)["secret"]
    assert ha.connected  # nothing happens before the reload
    agent_process.process.send_signal(signal.SIGHUP)
    for _ in range(100):
        if not ha.connected:
            break
        await asyncio.sleep(0.05)
    assert not ha.connected
    assert any(isinstance(e, Disconnected) and isinstance(e.error, InvalidAuth) for e in events)
    await panel.ping()  # untouched
    with pytest.raises(InvalidAuth):
        await agent_process.client().connect()
    fresh = agent_process.client(secret=new_secret)
    closing.append(fresh)
    await fresh.connect()
    log = (tmp_path / "agent.log").read_text()
    assert new_secret not in log and agent_process.secrets["homeassistant"] not in log


def test_ctl_state_call_and_errors(agent_process: AgentProcess, tmp_path: Path) -> None:
    base = [
        "ctl",
        "--host",
        "127.0.0.1",
        "--port",
        str(agent_process.port),
        "--fingerprint",
        agent_process.fingerprint,
        "--client-id",
        "homeassistant",
    ]
    env = {"PI_AGENT_SECRET": agent_process.secrets["homeassistant"]}
    state = agent_process.cli(*base, "state", env=env)
    assert state.returncode == 0, state.stderr
    assert "porch" in state.stdout and "sprinklers" in state.stdout
    printed = json.loads(state.stdout)  # the devices and states as the agent sent them
    assert printed["states"]["porch"] == {"on": False, "effect": None, "brightness": 0}
    assert printed["states"]["sprinklers"]["zones"]["lawn"]["ends_at"] is None
    devices = {device["id"]: device for device in printed["devices"].values()}
    assert devices["porch"]["capabilities"]["effects"] == ["blink", "pulse"]

    secret_file = tmp_path / "secret"
    secret_file.write_text(agent_process.secrets["homeassistant"] + "\n")
    secret_file.chmod(0o600)
    call = agent_process.cli(
        *base, "--secret-file", str(secret_file), "call", "porch", "turn_on", "brightness=200"
    )
    assert call.returncode == 0, call.stderr

    wrong = agent_process.cli(*base, "state", env={"PI_AGENT_SECRET": "WRONG-SECRET"})
    assert wrong.returncode == 4
    assert len(wrong.stderr.strip().splitlines()) == 1
    assert "Traceback" not in wrong.stderr

    mismatch = agent_process.cli(
        *[a if a != agent_process.fingerprint else "00" * 32 for a in base], "state", env=env
    )
    assert mismatch.returncode == 6
    assert "Traceback" not in mismatch.stderr

    closed = agent_process.cli(
        *[a if a != str(agent_process.port) else str(free_port()) for a in base], "state", env=env
    )
    assert closed.returncode == 3
    assert "Traceback" not in closed.stderr

    # The secret is never accepted on the command line, where `ps` shows it to everyone.
    secret = agent_process.secrets["homeassistant"]
    argv = agent_process.cli(*base, "--secret", secret, "state", env=env)
    assert argv.returncode == 2
    assert secret not in argv.stderr + argv.stdout
