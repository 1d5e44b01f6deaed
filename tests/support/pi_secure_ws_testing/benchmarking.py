"""What the benchmarks share: the agent in its own process, a pairing, a TLS client context, the
floor server (bare websockets TLS with the agent's certificate), percentiles."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .wire import tls13_context

# Runs the real AgentApp on loopback with an ephemeral port, printed on its first line; with a
# level argument it logs as `pi-agent run` does (to stderr).
AGENT_RUNNER = """
import asyncio, logging, sys
from pathlib import Path
from pi_agent.app import AgentApp
if len(sys.argv) > 2:
    logging.basicConfig(level=sys.argv[2], stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

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


def agent_log(directory: Path) -> Path:
    """Where :func:`start_agent` writes the agent's log for the config in ``directory``."""
    return directory.parent / f"{directory.name}.log"


def start_agent(
    directory: Path, env: dict[str, str] | None = None, *, log_level: str | None = None
) -> tuple[subprocess.Popen[str], int]:
    """The agent in its own process; its log goes to :func:`agent_log`, shown if it fails to
    start (``log_level``: log as ``pi-agent run`` does, at that level)."""
    log_path = agent_log(directory)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                AGENT_RUNNER,
                str(directory),
                *([log_level] if log_level else []),
            ],
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
    return tls13_context()


def run_floor_server(
    handler: Callable[[Any], Awaitable[None]], cert_dir: str, announce: Callable[[int], None]
) -> None:
    """Serve ``handler`` over bare websockets TLS with the agent's certificate and TLS settings,
    in this (child) process, until it is killed; ``announce(port)`` once it listens."""
    from pi_secure_ws_protocol.const import SUBPROTOCOL
    from websockets.asyncio.server import serve

    from pi_agent.pki import server_ssl_context

    async def main() -> None:
        async with serve(
            handler,
            "127.0.0.1",
            0,
            ssl=server_ssl_context(Path(cert_dir)),
            compression=None,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        ) as server:
            announce(server.sockets[0].getsockname()[1])
            await asyncio.Future()

    asyncio.run(main())


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def ms(value: float) -> str:
    """Seconds as milliseconds, for tables."""
    return f"{value * 1000:7.2f}"
