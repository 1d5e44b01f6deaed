"""Hostile-LAN benchmark: a good client's latency while each attack class runs, in one run.

The agent runs the demo configuration (`pi-agent init`: lights, sprinklers, frame, camera) in its
own process, logging at INFO to a file. A good client (Home Assistant's role, `control`, from
127.0.0.1) logs in once a second and sends a light command every 100 ms. First a baseline with no
attack, then each attack class from its own process and its own loopback address:

- prelogin_pings: 4 sockets per source pinging before login, reconnecting when cut
- malformed_upgrades: upgrades with two Origin headers, POSTs and garbage, as fast as it can
- many_sessions: a viewer logging in again and again, holding every session it gets
- big_messages: viewer sessions sending 16 MiB text and binary frames
- post_login_flood: a viewer session sending pings as fast as it can, reconnecting when closed
- picture_decoding: a viewer asking 8 thumbnails at once of a 16 Mpx PNG, each a new size
- stream_churn: a viewer starting and stopping camera streams in a loop
Prints, for each: login p95 and command p99 as ratios to the baseline, failed good requests, the
agent's CPU seconds per second, its peak resident memory, and the log bytes it wrote. Asserts
nothing. The machine's load average is printed too: the figures mean little on a busy machine.

Run: .venv/bin/python benchmarks/hostile.py [--seconds N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import json
import logging
import multiprocessing
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pi_secure_ws_protocol import handshake as client_module  # it calls websockets' connect
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.binary import encode_frame
from pi_secure_ws_protocol.client import AgentClient
from pi_secure_ws_protocol.const import PATH, SUBPROTOCOL
from pi_secure_ws_protocol.errors import PiSecureWsError
from pi_secure_ws_testing.benchmarking import (
    agent_log,
    client_context,
    make_agent_config,
    percentile,
    start_agent,
    stop_agent,
)
from PIL import Image
from websockets.asyncio.client import connect

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- the agent process ------------------------------------------------------------------------


class AgentProbe:
    """CPU time, resident memory (sampled every 20 ms) and log size of the agent process."""

    def __init__(self, pid: int, log_path: Path) -> None:
        self.pid = pid
        self.log_path = log_path
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            with contextlib.suppress(OSError, ValueError):
                self.peak_rss = max(self.peak_rss, self.rss())

    def reset_peak(self) -> None:
        self.peak_rss = self.rss()

    def log_bytes(self) -> int:
        return self.log_path.stat().st_size

    def close(self) -> None:
        self._stop.set()


ADD_VIEWER = (sys.executable, "-m", "pi_agent", "client", "add", "wall_panel", "--role", "viewer")


def add_viewer(directory: Path) -> str:
    out = subprocess.run(
        [*ADD_VIEWER, "--config-dir", str(directory), "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    secret: str = json.loads(out.stdout)["secret"]
    return secret


# ---- attackers (each in its own process) ------------------------------------------------------


def _client(port: int, creds: dict[str, Any]) -> AgentClient:
    return AgentClient(
        "127.0.0.1",
        port,
        client_id=creds["client_id"],
        secret=creds["secret"],
        fingerprint=creds["fingerprint"],
    )


async def _ws(port: int, source: str) -> Any:
    return await connect(
        f"wss://127.0.0.1:{port}{PATH}",
        ssl=client_context(),
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        compression=None,
        ping_interval=None,
        open_timeout=5,
        local_addr=(source, 0),
    )


async def prelogin_pings(port: int, creds: dict[str, Any], until: float) -> None:
    async def socket_loop(source: str) -> None:
        while time.monotonic() < until:
            try:
                ws = await _ws(port, source)
                while time.monotonic() < until:
                    await ws.ping()
            except Exception:
                await asyncio.sleep(0.05)

    await asyncio.gather(*(socket_loop(f"127.0.0.{50 + i // 4}") for i in range(8)))


MALFORMED = [
    (
        f"GET {PATH} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\nOrigin: https://a\r\nOrigin: https://b\r\n\r\n"
    ).encode(),
    f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode(),
    b"\x00\x01garbage\r\n\r\n",
]


async def malformed_upgrades(port: int, creds: dict[str, Any], until: float) -> None:
    async def loop(source: str) -> None:
        n = 0
        while time.monotonic() < until:
            n += 1
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=client_context(), local_addr=(source, 0)
                )
                writer.write(MALFORMED[n % len(MALFORMED)])
                await asyncio.wait_for(reader.read(4096), 2)
                writer.close()
            except Exception:
                await asyncio.sleep(0.01)

    await asyncio.gather(*(loop(f"127.0.0.{60 + i}") for i in range(4)))


async def many_sessions(port: int, creds: dict[str, Any], until: float) -> None:
    held: list[AgentClient] = []
    while time.monotonic() < until:
        client = _client(port, creds)
        with contextlib.suppress(Exception):
            await client.connect()
            held.append(client)
        await asyncio.sleep(0.02)
    for client in held:
        await client.close()


async def big_messages(port: int, creds: dict[str, Any], until: float) -> None:
    text = '{"v":1,"type":"ping","id":1,"pad":"' + "x" * (16 * 1024 * 1024) + '"}'
    header = {"v": 1, "type": "call", "id": 2, "device": "frame", "action": "put_picture"}
    binary = encode_frame({**header, "params": {"name": "x.png"}}, b"\0" * (16 * 1024 * 1024))

    async def loop(i: int) -> None:
        while time.monotonic() < until:
            client = _client(port, creds)
            try:
                await client.connect()
                assert client._ws is not None
                await client._ws.send(text if i % 2 else binary)
                await asyncio.wait_for(client._ws.wait_closed(), 5)
            except Exception:
                await asyncio.sleep(0.05)
            finally:
                await client.close()

    await asyncio.gather(*(loop(i) for i in range(4)))


async def post_login_flood(port: int, creds: dict[str, Any], until: float) -> None:
    ping = m.encode(m.PING, id=1)
    while time.monotonic() < until:
        client = _client(port, creds)
        try:
            await client.connect()
            assert client._ws is not None
            while time.monotonic() < until:
                await client._ws.send(ping)
        except Exception:
            await asyncio.sleep(0.05)
        finally:
            with contextlib.suppress(Exception):
                await client.close()


async def picture_decoding(port: int, creds: dict[str, Any], until: float) -> None:
    client = _client(port, creds)
    await client.connect()
    size = 16
    while time.monotonic() < until:
        calls = []
        for _ in range(8):
            size = 16 + (size + 37) % 2000  # a new size each time: no cached thumbnail helps
            calls.append(client.call("frame", "thumbnail", {"size": size}, timeout=30))
        await asyncio.gather(*calls, return_exceptions=True)
    await client.close()


async def stream_churn(port: int, creds: dict[str, Any], until: float) -> None:
    client = _client(port, creds)
    await client.connect()
    while time.monotonic() < until:
        try:
            stream = await client.stream("camera", "stream", {"fps": 10})
            await stream.close()
        except PiSecureWsError:
            await asyncio.sleep(0.02)
    await client.close()


ATTACKS: dict[str, Callable[[int, dict[str, Any], float], Any]] = {
    "prelogin_pings": prelogin_pings,
    "malformed_upgrades": malformed_upgrades,
    "many_sessions": many_sessions,
    "big_messages": big_messages,
    "post_login_flood": post_login_flood,
    "picture_decoding": picture_decoding,
    "stream_churn": stream_churn,
}


def attacker_process(name: str, port: int, creds: dict[str, Any], seconds: float) -> None:
    # Each attacker has its own loopback address, so its blocks never touch the good client's.
    client_module.connect = functools.partial(  # type: ignore[assignment]
        connect, local_addr=(f"127.0.0.{80 + list(ATTACKS).index(name)}", 0)
    )
    until = time.monotonic() + seconds
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # its own lost-socket warnings
    # On a LAN the attacker's CPU is another machine's; here it shares this one, so it yields.
    os.nice(19)
    with contextlib.suppress(Exception):
        asyncio.run(ATTACKS[name](port, creds, until))


# ---- the good client --------------------------------------------------------------------------


async def good_client(port: int, creds: dict[str, Any], seconds: float) -> dict[str, Any]:
    logins: list[float] = []
    commands: list[float] = []
    failures = 0
    until = time.monotonic() + seconds
    client = _client(port, creds)
    await client.connect()
    next_login = time.monotonic()
    i = 0
    while time.monotonic() < until:
        i += 1
        start = time.perf_counter()
        try:
            await client.call("porch", "turn_on" if i % 2 else "turn_off", timeout=10)
            commands.append(time.perf_counter() - start)
        except Exception:
            failures += 1
            with contextlib.suppress(Exception):
                await client.close()
                client = _client(port, creds)
                await client.connect()
        if time.monotonic() >= next_login:
            next_login += 1.0
            other = _client(port, creds)
            start = time.perf_counter()
            try:
                await other.connect()
                logins.append(time.perf_counter() - start)
            except Exception:
                failures += 1
            finally:
                await other.close()
        await asyncio.sleep(0.1)
    await client.close()
    return {"logins": logins, "commands": commands, "failures": failures}


async def phase(
    name: str | None,
    port: int,
    good: dict[str, Any],
    viewer: dict[str, Any],
    probe: AgentProbe,
    seconds: float,
) -> dict[str, Any]:
    attacker = None
    if name is not None:
        attacker = multiprocessing.Process(
            target=attacker_process, args=(name, port, viewer, seconds + 1)
        )
        attacker.start()
        await asyncio.sleep(1.0)  # the attack is under way before measuring
    probe.reset_peak()
    cpu, log, wall = probe.cpu_seconds(), probe.log_bytes(), time.monotonic()
    result = await good_client(port, good, seconds)
    elapsed = time.monotonic() - wall
    result["cpu"] = (probe.cpu_seconds() - cpu) / elapsed
    result["log"] = probe.log_bytes() - log
    result["log_per_minute"] = result["log"] * 60 / elapsed
    result["rss"] = probe.peak_rss
    if attacker is not None:
        attacker.join(10)
        if attacker.is_alive():
            attacker.kill()
    await asyncio.sleep(1.0)  # let the agent settle
    return result


def prepare_pictures(directory: Path) -> None:
    """A 16 Mpx PNG (the largest the default budget decodes) on screen, a 64 Mpx one beside it."""
    pictures = directory / "state" / "pictures"
    pictures.mkdir(parents=True, exist_ok=True)
    for name, side in (("big.png", 3999), ("bomb.png", 7999)):
        buffer = io.BytesIO()
        Image.new("RGB", (side, side), (30, 90, 60)).save(buffer, format="PNG")
        (pictures / name).write_bytes(buffer.getvalue())


async def run(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config_dir = Path(tmp) / "agent"
        pairing = make_agent_config(config_dir)
        viewer = {**pairing, "client_id": "wall_panel", "secret": add_viewer(config_dir)}
        prepare_pictures(config_dir)
        # Logging as `pi-agent run` does (INFO to stderr): its size is one of the figures.
        agent, port = start_agent(config_dir, log_level="INFO")
        log_path = agent_log(config_dir)
        probe = AgentProbe(agent.pid, log_path)
        try:
            setup = _client(port, pairing)
            await setup.connect()
            with contextlib.suppress(PiSecureWsError):
                await setup.call("frame", "show", {"name": "big.png"}, timeout=60)
            await setup.close()
            results: dict[str, dict[str, Any]] = {}
            load_before = os.getloadavg()
            # A baseline first and last: the floor is the better of the two, so a busy machine
            # at either end does not flatter the attacks.
            for label, name in [("baseline", None), *((a, a) for a in ATTACKS)]:
                results[label] = await phase(name, port, pairing, viewer, probe, seconds)
            results["baseline (end)"] = await phase(None, port, pairing, viewer, probe, seconds)
            load_after = os.getloadavg()
        finally:
            probe.close()
            stop_agent(agent)

    bases = (results["baseline"], results["baseline (end)"])
    base_login = min(percentile(base["logins"], 95) for base in bases)
    base_command = min(percentile(base["commands"], 99) for base in bases)
    print("pi_secure_ws hostile-LAN benchmark (loopback; agent, attacker and good client each in")
    print(f"its own process; {seconds:.0f} s per phase; demo configuration)")
    print(
        f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(
        f"floor (the better baseline): login p95 {base_login * 1000:.1f} ms, "
        f"command p99 {base_command * 1000:.1f} ms"
    )
    header = (
        f"| {'phase':<19} | login p95 | command p99 | good failures | agent CPU s/s | "
        "peak RSS MiB | log bytes (per min) |"
    )
    print(header)
    print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
    for name, result in results.items():
        login = percentile(result["logins"], 95) / base_login
        command = percentile(result["commands"], 99) / base_command
        print(
            f"| {name:<19} | {login:8.2f}x | {command:10.2f}x | {result['failures']:13d} | "
            f"{result['cpu']:13.2f} | {result['rss'] / 2**20:12.0f} | "
            f"{result['log']:>8d} ({result['log_per_minute']:>7.0f}) |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per phase")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    ssl.create_default_context()  # warm the import before the first phase
    asyncio.run(run(args.seconds))


if __name__ == "__main__":
    main()
