"""Camera benchmark: frames through the agent's secure channel against bare websockets over TLS.

Measures, with the agent in its own process on loopback:
- frames and bytes per second of the 1280x720 test pattern delivered by the `camera` device's
  `stream` action to one subscriber and to four (four separately logged-in clients),
- the floor: the same test-pattern JPEGs (pre-generated) pushed at the same rate by a bare
  websockets TLS server (the agent's certificate and TLS context) to one and to four bare clients,
- the agent's CPU use while streaming, and its resident memory (VmRSS) idle and while streaming
  to four; also the idle memory of the full `pi-agent init` demo configuration.
Prints figures and ratios to the floor; asserts nothing.

Run: .venv/bin/python benchmarks/camera.py [--quick] [--fps N]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pi_secure_ws_protocol.client import AgentClient
from pi_secure_ws_protocol.const import PATH, SUBPROTOCOL
from pi_secure_ws_testing.benchmarking import (
    client_context,
    make_agent_config,
    run_floor_server,
    start_agent,
    stop_agent,
)
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection

from pi_agent.devices.camera import MIN_FPS

WIDTH, HEIGHT, JPEG_QUALITY = 1280, 720, 80
MAX_FPS = 60.0  # the highest [camera] max_fps the config accepts
FLOOR_FRAMES = 30  # distinct pre-generated frames the floor cycles through
WARM_UP = 0.5  # seconds of streaming before counting starts
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Window:
    """What the subscribers received during one counted window."""

    subscribers: int
    seconds: float
    frames: list[int]  # per subscriber
    nbytes: list[int]
    cpu: float  # the server process's CPU seconds per wall second (1.0 = one core)
    peak_rss: int  # bytes; the server process's highest VmRSS sampled during the window
    dropped: int  # frames the client library dropped because the counter lagged

    @property
    def fps(self) -> float:
        """Mean frames per second per subscriber."""
        return sum(self.frames) / len(self.frames) / self.seconds

    @property
    def bytes_per_second(self) -> float:
        """Mean bytes per second per subscriber."""
        return sum(self.nbytes) / len(self.nbytes) / self.seconds


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def mb(value: float) -> str:
    return f"{value / 1e6:6.1f} MB"


def camera_only(directory: Path, fps: float) -> None:
    """Keep the generated [agent]/[limits]/... sections; replace every device with the camera."""
    toml = (directory / "agent.toml").read_text()
    head = toml.split("\n[[light]]")[0]
    (directory / "agent.toml").write_text(
        head
        + "\n[camera]\n"
        + 'backend = "test_pattern"\n'
        + f"width = {WIDTH}\nheight = {HEIGHT}\nmax_fps = {fps:g}\njpeg_quality = {JPEG_QUALITY}\n"
    )


def pregenerated_frames(count: int) -> tuple[list[bytes], float]:
    """Frames from the agent's own test-pattern backend with the agent's JPEG settings, and the
    CPU seconds one frame took to draw and encode (what the agent spends before any sending)."""
    from pi_agent.devices.camera_backends import TestPatternBackend

    backend = TestPatternBackend(WIDTH, HEIGHT)
    backend.start()
    try:
        start = time.process_time()
        frames = [backend.capture_jpeg(None, JPEG_QUALITY) for _ in range(count)]
        return frames, (time.process_time() - start) / count
    finally:
        backend.stop()


def floor_server_process(cert_dir: str, fps: float, ready: Any) -> None:
    """A bare websockets TLS server pushing pre-generated JPEGs at ``fps`` to each client."""
    frames, encode_seconds = pregenerated_frames(FLOOR_FRAMES)
    period = 1.0 / fps

    async def push(ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        index = 0
        while True:
            await ws.send(frames[index % len(frames)])
            index += 1
            due += period
            now = loop.time()
            if due < now - period:
                due = now  # fell behind: pace from now, as the agent does, rather than burst
            await asyncio.sleep(due - now)

    async def handler(ws: ServerConnection) -> None:
        pusher = asyncio.create_task(push(ws))
        try:
            await ws.wait_closed()
        finally:
            pusher.cancel()

    run_floor_server(handler, cert_dir, lambda port: ready.send((port, encode_seconds)))


@dataclass
class Subscription:
    """One subscriber's frames, how to close it, and how many frames its client library dropped
    because the counting loop lagged (they crossed the channel but were not counted)."""

    frames: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]
    dropped: Callable[[], int] = lambda: 0


async def measure(
    server_pid: int,
    subscribe: Callable[[], Awaitable[Subscription]],
    subscribers: int,
    seconds: float,
) -> Window:
    """Subscribe ``subscribers`` times, warm up, then count what arrives for ``seconds``."""
    subscriptions = [await subscribe() for _ in range(subscribers)]
    frames = [0] * subscribers
    nbytes = [0] * subscribers

    async def count(index: int, source: AsyncIterator[bytes]) -> None:
        async for frame in source:
            frames[index] += 1
            nbytes[index] += len(frame)

    def dropped() -> int:
        return sum(subscription.dropped() for subscription in subscriptions)

    counters = [
        asyncio.create_task(count(i, subscription.frames))
        for i, subscription in enumerate(subscriptions)
    ]
    await asyncio.sleep(WARM_UP)
    frames_before, bytes_before, dropped_before = list(frames), list(nbytes), dropped()
    cpu_before = cpu_seconds(server_pid)
    start = time.perf_counter()
    peak_rss = rss_bytes(server_pid)
    while (elapsed := time.perf_counter() - start) < seconds:
        await asyncio.sleep(min(0.25, seconds - elapsed))
        peak_rss = max(peak_rss, rss_bytes(server_pid))
    elapsed = time.perf_counter() - start
    cpu = (cpu_seconds(server_pid) - cpu_before) / elapsed
    window = Window(
        subscribers,
        elapsed,
        [after - before for after, before in zip(frames, frames_before, strict=True)],
        [after - before for after, before in zip(nbytes, bytes_before, strict=True)],
        cpu,
        peak_rss,
        dropped() - dropped_before,
    )
    for counter in counters:
        counter.cancel()
    await asyncio.gather(*counters, return_exceptions=True)
    for subscription in subscriptions:
        await subscription.close()
    return window


async def measure_floor(port: int, pid: int, subscribers: int, seconds: float) -> Window:
    async def subscribe() -> Subscription:
        ws = await connect(
            f"wss://127.0.0.1:{port}{PATH}",
            ssl=client_context(),
            compression=None,
            max_size=None,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        )

        async def frames() -> AsyncIterator[bytes]:
            async for message in ws:
                assert isinstance(message, bytes)
                yield message

        return Subscription(frames(), ws.close)

    return await measure(pid, subscribe, subscribers, seconds)


async def measure_agent(
    port: int, pid: int, pairing: dict[str, Any], fps: float, subscribers: int, seconds: float
) -> Window:
    async def subscribe() -> Subscription:
        client = AgentClient(
            "127.0.0.1",
            port,
            client_id=pairing["client_id"],
            secret=pairing["secret"],
            fingerprint=pairing["fingerprint"],
        )
        await client.connect()
        stream = await client.stream("camera", "stream", {"fps": fps})

        async def close() -> None:
            await stream.close()
            await client.close()

        return Subscription(stream, close, lambda: stream.dropped)

    return await measure(pid, subscribe, subscribers, seconds)


async def idle_rss(directory: Path, env: dict[str, str] | None = None) -> int:
    """VmRSS of an agent started on ``directory``, settled, before any client connects."""
    agent, _ = start_agent(directory, env)
    try:
        await asyncio.sleep(1.0)
        return rss_bytes(agent.pid)
    finally:
        stop_agent(agent)


def report(label: str, window: Window, floor: Window | None) -> None:
    line = (
        f"  {label:<24} {window.fps:5.1f} fps and {window.bytes_per_second / 1e6:5.2f} MB/s"
        f" per subscriber, {window.fps * window.subscribers:6.1f} fps in all;"
        f" server CPU {window.cpu * 100:3.0f}%"
    )
    if floor is not None:
        ratio = window.fps / floor.fps
        line += f"  agent/floor fps {ratio:.2f} (target >= {1 / 1.2:.2f}: within 1.2x)"
    if window.dropped:
        line += f"  ({window.dropped} dropped by the client library, not counted)"
    print(line)


async def run(quick: bool, fps: float) -> None:
    seconds = 2.0 if quick else 5.0
    with tempfile.TemporaryDirectory() as tmp:
        demo_dir = Path(tmp) / "demo"
        make_agent_config(demo_dir)
        config_dir = Path(tmp) / "agent"
        pairing = make_agent_config(config_dir)
        camera_only(config_dir, fps)
        parent, child = multiprocessing.Pipe()
        floor = multiprocessing.Process(
            target=floor_server_process, args=(str(config_dir), fps, child)
        )
        floor.start()
        floor_port, encode_seconds = parent.recv()
        assert floor.pid is not None
        agent: subprocess.Popen[str] | None = None
        try:
            agent, port = start_agent(config_dir)
            await asyncio.sleep(1.0)
            idle = rss_bytes(agent.pid)
            floor_1 = await measure_floor(floor_port, floor.pid, 1, seconds)
            floor_4 = await measure_floor(floor_port, floor.pid, 4, seconds)
            agent_1 = await measure_agent(port, agent.pid, pairing, fps, 1, seconds)
            agent_4 = await measure_agent(port, agent.pid, pairing, fps, 4, seconds)
        finally:
            if agent is not None:
                stop_agent(agent)
            floor.terminate()
            floor.join()
        demo_idle = await idle_rss(demo_dir)
        # The frame's display: without a screen SDL may pick its "offscreen" driver, which loads
        # Mesa's software OpenGL (llvmpipe); "dummy" is the driver without any GL.
        demo_idle_dummy = await idle_rss(demo_dir, {"SDL_VIDEODRIVER": "dummy"})

    print(
        f"pi_secure_ws camera benchmark: {WIDTH}x{HEIGHT} test pattern, JPEG quality "
        f"{JPEG_QUALITY}, {fps:g} fps asked, {seconds:g} s windows (loopback; agent and floor "
        "server in their own processes; CPU 100% = one core)"
    )
    report("floor, 1 bare client", floor_1, None)
    report("floor, 4 bare clients", floor_4, None)
    report("agent, 1 subscriber", agent_1, floor_1)
    report("agent, 4 subscribers", agent_4, floor_4)
    print(
        f"  test-pattern draw + JPEG encode alone: {encode_seconds * 1000:.1f} ms CPU per frame "
        f"= {encode_seconds * fps * 100:.0f}% of a core at {fps:g} fps (part of the agent's CPU)"
    )
    print(f"  agent memory (VmRSS), camera only: idle {mb(idle)} (target < 60 MB)")
    print(f"                           streaming to 4 {mb(agent_4.peak_rss)} (peak)")
    print(f"  agent memory (VmRSS), full demo config (pi-agent init): idle {mb(demo_idle)}")
    print(f"                  same, SDL_VIDEODRIVER=dummy: idle {mb(demo_idle_dummy)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s windows instead of 5 s")
    parser.add_argument(
        "--fps", type=float, default=30.0, help="rate asked of both (the camera's max_fps)"
    )
    args = parser.parse_args()
    if not MIN_FPS <= args.fps <= MAX_FPS:
        parser.error(f"--fps must be between {MIN_FPS:g} and {MAX_FPS:g} (the camera's max_fps)")
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    asyncio.run(run(args.quick, args.fps))


if __name__ == "__main__":
    main()
