"""What the benchmarks share: the agent in its own process, a pairing, a TLS client context."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

# Runs the real AgentApp on loopback with an ephemeral port, printed on its first line.
AGENT_RUNNER = """
import asyncio, sys
from pathlib import Path
from pi_agent.app import AgentApp

async def main():
    app = AgentApp(Path(sys.argv[1]), advertise=False, listen_host="127.0.0.1", port=0)
    await app.start()
    print(app.port, flush=True)
    await app.stopped.wait()

asyncio.run(main())
"""


INIT = (sys.executable, "-m", "pi_agent", "init")


def make_agent_config(directory: Path) -> dict[str, Any]:
    """`pi-agent init` into ``directory``; returns the pairing details (including the secret)."""
    out = subprocess.run(
        [*INIT, "--config-dir", str(directory), "--host", "localhost", "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    pairing: dict[str, Any] = json.loads(out.stdout)
    return pairing


def start_agent(
    directory: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int]:
    """The agent in its own process; its log goes next to ``directory``, shown only if it fails
    to start."""
    log_path = directory.parent / f"{directory.name}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", AGENT_RUNNER, str(directory)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, **(env or {})},
        )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        process.wait(10)
        sys.exit(f"the agent did not start:\n{log_path.read_text()}")
    return process, int(line)


def stop_agent(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait(10)


def client_context() -> ssl.SSLContext:
    """TLS 1.3 without verification: the floor measures transport cost, not pinning."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
