"""The outputs-off rig: a paired agent config with a pump, two zones and a light on mock pins
mirrored to a file, run as a real ``pi-agent`` process, alone or under ``FakeSystemd`` and the
shipped unit file (tests/agent/test_outputs_off.py, benchmarks/safety.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pi_secure_ws_protocol.client import AgentClient

from pi_agent.service_files import render_unit

from .agent import free_port, make_config_dir
from .pins import PinLog
from .systemd import FakeSystemd

PUMP, LAWN, BEDS, PORCH = 19, 5, 6, 17
LAG = 0.5
ACTIVE_HIGH = {PUMP: True, LAWN: True, BEDS: False, PORCH: True}
ZONE_PINS = {"lawn": LAWN, "beds": BEDS}
GARDEN = f"""
[sprinklers]
max_run_seconds = 600
min_switch_interval = 0.5

[sprinklers.pump]
pin = {PUMP}
lead = 0.2
lag = {LAG}

[[sprinklers.zone]]
id = "lawn"
pin = {LAWN}

[[sprinklers.zone]]
id = "beds"
pin = {BEDS}
active_high = false
max_seconds = 1.5

[[light]]
id = "porch"
pin = {PORCH}
"""
PI_AGENT = Path(sys.executable).parent / "pi-agent"


@dataclass
class Garden:
    tmp_path: Path
    config_dir: Path
    port: int
    fingerprint: str
    secret: str
    pins: PinLog
    env: dict[str, str]

    def unit(self) -> FakeSystemd:
        text = render_unit(
            pi_agent=PI_AGENT, config_dir=self.config_dir, state_dir=self.config_dir / "state"
        )
        return FakeSystemd(text, self.tmp_path, self.env)

    def client(self) -> AgentClient:
        return AgentClient(
            "127.0.0.1",
            self.port,
            client_id="homeassistant",
            secret=self.secret,
            fingerprint=self.fingerprint,
        )

    def run_agent(self) -> subprocess.Popen[bytes]:
        """The agent alone, as ExecStart= runs it but without the unit around it."""
        log = (self.tmp_path / "agent.log").open("ab")
        return subprocess.Popen(
            [str(PI_AGENT), "run", "--config-dir", str(self.config_dir)],
            env=self.env,
            stdout=log,
            stderr=log,
        )

    async def start(self) -> FakeSystemd:
        """The agent's unit, started and ready (the caller stops it: ``unit.stop()``)."""
        unit = self.unit()
        unit.start()
        try:
            await asyncio.to_thread(unit.wait_for, "ready")
        except BaseException:
            unit.stop()
            raise
        return unit

    async def watering(self, zone: str = "lawn", seconds: float = 600) -> AgentClient:
        """A connected client that ran ``zone``; returns once the pump and the zone are on (the
        caller closes the client)."""
        client = self.client()
        try:
            await client.connect()
            await client.call("sprinklers", "run", {"zone": zone, "seconds": seconds})
            gpio = ZONE_PINS[zone]
            await self.pins.wait(lambda: self.pins.on_now(PUMP) and self.pins.on_now(gpio))
        except BaseException:
            await client.close()
            raise
        return client

    def agent_pids(self, unit: FakeSystemd) -> set[int]:
        return {event.pid for event in unit.find("started")}


def make_garden(tmp_path: Path) -> Garden:
    """A paired config with a pump, two zones and a light, mirrored mock pins."""
    port = free_port()
    config_dir = tmp_path / "agent"
    fingerprint, secrets = make_config_dir(config_dir, GARDEN)
    toml = config_dir / "agent.toml"
    text = toml.read_text().replace("port = 8765", f"port = {port}")
    toml.write_text(text.replace('hardware = "mock"', 'hardware = "mock"\nzeroconf = false'))
    pin_log = tmp_path / "pins.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "PI_AGENT_FAULTS"}
    }
    env.update({"PI_AGENT_PIN_LOG": str(pin_log), "SDL_VIDEODRIVER": "dummy"})
    return Garden(
        tmp_path,
        config_dir,
        port,
        fingerprint,
        secrets["homeassistant"],
        PinLog(pin_log, ACTIVE_HIGH),
        env,
    )
