"""Transport and abuse limits: each one attacked over real sockets on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.const import PATH, SUBPROTOCOL, CloseCode
from pi_secure_ws_protocol.errors import Blocked, CannotConnect, CommandError, InvalidAuth
from pi_secure_ws_protocol.secret import generate_secret
from pi_secure_ws_testing.agent import AgentFactory, RunningAgent
from pi_secure_ws_testing.wire import insecure_context, raw_connect, scram_login
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

FAST = """
[limits]
login_timeout = 0.6
max_unauthenticated = 6
max_unauthenticated_per_source = 2
[blocklist]
threshold = 3
base_delay = 0.4
max_delay = 1.6
decay = 900
"""


async def open_tcp(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, Any]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True when the agent closes the socket (EOF or reset) within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(4096):
                pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


async def tls_open(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, Any]:
    return await asyncio.open_connection(
        "127.0.0.1", port, ssl=insecure_context(), local_addr=(source, 0)
    )


def upgrade_request(path: str = PATH, extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n{extra}\r\n"
    ).encode()


async def test_plaintext_gets_nothing(agent: RunningAgent) -> None:
    reader, writer = await open_tcp(agent.port)
    writer.write(upgrade_request())
    await writer.drain()
    try:
        data = await asyncio.wait_for(reader.read(4096), 3)
    except ConnectionResetError:
        data = b""
    assert b"HTTP" not in data  # no plaintext answer, only a TLS alert at most
    with pytest.raises((InvalidStatus, OSError, ConnectionClosed, Exception)):
        await connect(f"ws://127.0.0.1:{agent.port}{PATH}", open_timeout=3)


async def test_upgrade_answer_has_no_server_header_and_no_compression(agent: RunningAgent) -> None:
    reader, writer = await tls_open(agent.port)
    writer.write(upgrade_request(extra="Sec-WebSocket-Extensions: permessage-deflate\r\n"))
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    assert head.startswith("HTTP/1.1 101")
    assert "\r\nserver:" not in head.lower()
    assert "permessage-deflate" not in head.lower()
    writer.close()


async def test_query_string_is_refused_and_logged(
    agent: RunningAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with pytest.raises(InvalidStatus) as err:
        await raw_connect(agent, f"{PATH}?user=homeassistant&secret={agent.secret}")
    assert err.value.response.status_code == 400
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "query string" in text
    assert agent.secret not in text


async def test_foreign_origin_is_refused(agent: RunningAgent) -> None:
    with pytest.raises(InvalidStatus) as err:
        await raw_connect(agent, origin="https://evil.example")  # type: ignore[arg-type]
    assert err.value.response.status_code == 403


async def test_allowed_origin_is_accepted(agent_factory: AgentFactory) -> None:
    async with agent_factory('[security]\nallowed_origins = ["https://ha.example"]\n') as agent:
        ws = await raw_connect(agent, origin="https://ha.example")  # type: ignore[arg-type]
        assert json.loads(await ws.recv())["type"] == m.AUTH_START
        await ws.close()


async def test_missing_subprotocol_and_wrong_path_are_refused(agent: RunningAgent) -> None:
    with pytest.raises(InvalidStatus) as err:
        await raw_connect(agent, subprotocols=None)
    assert err.value.response.status_code == 400
    with pytest.raises(InvalidStatus) as err:
        await raw_connect(agent, "/other")
    assert err.value.response.status_code == 404


@pytest.mark.parametrize("stage", ["tcp", "tls", "upgrade", "login", "mid_login"])
async def test_silent_socket_is_closed_at_every_stage(
    agent_factory: AgentFactory, stage: str
) -> None:
    async with agent_factory(FAST) as agent:
        started = time.monotonic()
        if stage == "tcp":
            reader, _ = await open_tcp(agent.port)
        else:
            reader, writer = await tls_open(agent.port)
            if stage in ("login", "mid_login"):
                writer.write(upgrade_request())
                await writer.drain()
                await reader.readuntil(b"\r\n\r\n")
            if stage == "mid_login":
                ws = await raw_connect(agent)
                json.loads(await ws.recv())
                await ws.send(
                    m.encode(
                        m.AUTH_CLIENT_FIRST,
                        mechanism="SCRAM-SHA-256-PLUS",
                        message="p=tls-server-end-point,,n=homeassistant,r=abcdefghijklmnop",
                    )
                )
                json.loads(await ws.recv())
                with pytest.raises(ConnectionClosed):
                    async with asyncio.timeout(3):
                        await ws.recv()
                assert time.monotonic() - started < 3
                return
        assert await closed_within(reader, 3), f"socket silent at {stage} was not closed"
        assert time.monotonic() - started >= 0.5
        assert agent.app.server.unauthenticated == 0  # type: ignore[union-attr]


async def test_oversized_prelogin_frame_closes(agent: RunningAgent) -> None:
    ws = await raw_connect(agent)
    json.loads(await ws.recv())
    await ws.send("x" * 5000)
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    assert ws.close_code == CloseCode.MESSAGE_TOO_BIG
    await asyncio.sleep(0.05)
    assert agent.app.server.blocklist.failures("127.0.0.1") == 1  # type: ignore[union-attr]


async def test_binary_prelogin_frame_closes(agent: RunningAgent) -> None:
    ws = await raw_connect(agent)
    json.loads(await ws.recv())
    await ws.send(b"\x00\x01binary")
    reply = json.loads(await ws.recv())
    assert reply["type"] == m.AUTH_FAILED
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    assert ws.close_code == CloseCode.UNSUPPORTED_DATA


async def test_after_login_the_message_cap_applies(agent_factory: AgentFactory) -> None:
    async with agent_factory("[limits]\nmax_message_size = 65536\n") as agent:
        client = await agent.connected_client()
        ws = client._ws
        assert ws is not None
        # Bigger than the pre-login cap, smaller than the session cap: answered, not closed.
        with pytest.raises(CommandError) as err:
            await client.call("system", "refresh", {"pad": "x" * 6000})
        assert err.value.code == m.ERR_INVALID_PARAMS
        assert client.connected
        await ws.send("y" * 70000)
        await asyncio.sleep(0.3)
        assert ws.close_code == CloseCode.MESSAGE_TOO_BIG


async def test_unauthenticated_sockets_are_capped_per_source_and_in_total(
    agent_factory: AgentFactory,
) -> None:
    async with agent_factory(FAST.replace("login_timeout = 0.6", "login_timeout = 5")) as agent:
        held = [await open_tcp(agent.port) for _ in range(2)]
        third, _ = await open_tcp(agent.port)
        assert await closed_within(third, 1), "a third socket from one source was accepted"
        for source in ("127.0.0.2", "127.0.0.3"):
            held += [await open_tcp(agent.port, source) for _ in range(2)]
        await asyncio.sleep(0.1)
        assert agent.app.server.unauthenticated == 6  # type: ignore[union-attr]
        other, _ = await open_tcp(agent.port, "127.0.0.4")
        assert await closed_within(other, 1), "a socket over the total cap was accepted"
        for _reader, writer in held:
            writer.close()


async def test_known_source_keeps_a_reserved_slot_during_a_flood(
    agent_factory: AgentFactory,
) -> None:
    async with agent_factory(FAST.replace("login_timeout = 0.6", "login_timeout = 5")) as agent:
        client = await agent.connected_client()
        await client.close()
        held = []
        for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            held += [await open_tcp(agent.port, source) for _ in range(2)]
        await asyncio.sleep(0.1)
        assert agent.app.server.unauthenticated == 6  # type: ignore[union-attr]
        stranger, _ = await open_tcp(agent.port, "127.0.0.5")
        assert await closed_within(stranger, 1)
        client = agent.client()
        await client.connect()  # from 127.0.0.1, which logged in before
        assert await client.call("system", "refresh") is not None
        for _reader, writer in held:
            writer.close()


async def test_failed_logins_block_with_growing_backoff(agent_factory: AgentFactory) -> None:
    async with agent_factory(FAST) as agent:
        bad = generate_secret()
        for _ in range(3):
            with pytest.raises(InvalidAuth):
                await agent.client(secret=bad).connect()
        # Blocked now, for base_delay; the right secret does not help while blocked.
        with pytest.raises(Blocked) as err:
            await agent.client().connect()
        assert 0 < err.value.retry_after <= 1
        # Told once; further tries in the same window are dropped before TLS.
        with pytest.raises(CannotConnect):
            await agent.client().connect()
        await asyncio.sleep(0.5)
        with pytest.raises(InvalidAuth):
            await agent.client(secret=bad).connect()
        retry = agent.app.server.blocklist.retry_after("127.0.0.1")  # type: ignore[union-attr]
        assert retry is not None and 0.4 < retry <= 0.8  # doubled
        await asyncio.sleep(0.9)
        client = agent.client()
        await client.connect()  # a success clears the count
        assert agent.app.server.blocklist.failures("127.0.0.1") == 0  # type: ignore[union-attr]


async def test_blocks_survive_a_restart(agent_factory: AgentFactory, tmp_path: Any) -> None:
    from pi_secure_ws_testing.agent import running_agent

    slow = FAST.replace("base_delay = 0.4", "base_delay = 30").replace(
        "max_delay = 1.6", "max_delay = 60"
    )
    async with agent_factory(slow) as agent:
        for _ in range(3):
            with pytest.raises(InvalidAuth):
                await agent.client(secret=generate_secret()).connect()
        config_dir = agent.config_dir
        secret = agent.secret
        fingerprint = agent.fingerprint
    async with running_agent(config_dir, prepared=True) as again:
        again.fingerprint = fingerprint
        with pytest.raises(Blocked) as err:
            await again.client(secret=secret).connect()
        assert err.value.retry_after > 20


async def test_failures_never_lock_the_client_id(agent_factory: AgentFactory) -> None:
    """Bad logins naming homeassistant from another address do not keep HA out."""
    async with agent_factory(FAST) as agent:
        for _ in range(6):
            ws = await raw_connect(agent, source="127.0.0.9")
            answer, _ = await scram_login(ws, "homeassistant", generate_secret())
            assert answer["type"] == m.AUTH_FAILED
            await ws.close()
            if agent.app.server.blocklist.retry_after("127.0.0.9"):  # type: ignore[union-attr]
                break
        assert agent.app.server.blocklist.retry_after("127.0.0.9") is not None  # type: ignore[union-attr]
        client = await agent.connected_client()
        assert client.connected


async def test_flood_of_bad_logins_does_not_stop_the_good_client(agent: RunningAgent) -> None:
    """127.0.0.2 floods bad logins while Home Assistant on 127.0.0.1 logs in and works."""
    stop = asyncio.Event()
    attempts = 0

    async def flood() -> None:
        nonlocal attempts
        while not stop.is_set() and attempts < 400:
            attempts += 1
            try:
                ws = await raw_connect(agent, source="127.0.0.2", open_timeout=2)
                await scram_login(ws, "homeassistant", "wrong")
                await ws.close()
            except Exception:  # refused, blocked, reset: all expected
                await asyncio.sleep(0)

    flooders = [asyncio.create_task(flood()) for _ in range(4)]
    try:
        await asyncio.sleep(0.2)
        for _ in range(5):
            client = agent.client()
            await client.connect()
            result = await client.call("system", "refresh")
            assert "hostname" in result or result == {} or result is not None
            await client.close()
    finally:
        stop.set()
        await asyncio.gather(*flooders)
    assert attempts > 10
    blocklist = agent.app.server.blocklist  # type: ignore[union-attr]
    assert blocklist.retry_after("127.0.0.2") is not None
    assert blocklist.failures("127.0.0.1") == 0


SCANNER_LIMITS = """
[limits]
max_unauthenticated = 512
max_unauthenticated_per_source = 512
messages_per_second = 1000
prelogin_work_burst = 1000000
prelogin_work_per_second = 1000000
"""


def _runnable_script(path: Path) -> bool:
    if not path.is_file():
        return False
    first_line = path.read_bytes().split(b"\n", 1)[0]
    interpreter = first_line.removeprefix(b"#!").split()[0] if first_line.startswith(b"#!") else b""
    return not interpreter or Path(interpreter.decode()).exists()


def test_sslyze_mozilla_modern(tmp_path: Any) -> None:
    """sslyze's Mozilla "modern" check against the running agent must pass."""
    import shutil
    import subprocess
    import sys
    import threading
    from pathlib import Path

    # The scanner of this environment, else .venv's; the agent under test runs on this Python.
    # In a Debian root .venv's sslyze is visible but cannot run (its interpreter is the host's).
    sslyze = next(
        (
            str(path)
            for path in (
                shutil.which("sslyze"),
                Path(sys.executable).parent / "sslyze",
                Path(__file__).resolve().parents[2] / ".venv" / "bin" / "sslyze",
            )
            if path and _runnable_script(Path(path))
        ),
        None,
    )
    if sslyze is None and sys.version_info >= (3, 14):
        pytest.skip("sslyze does not install on Python 3.14 yet (scripts/setup)")
    assert sslyze, "sslyze is installed by scripts/setup"
    from pi_secure_ws_testing.agent import running_agent

    ready = threading.Event()
    done = threading.Event()
    port: list[int] = []
    ca_file: list[str] = []

    def serve_agent() -> None:
        async def main() -> None:
            # sslyze opens dozens of parallel handshakes from one address; the per-source cap
            # (tested above) would refuse most of them, so it is lifted for this scan only.
            async with running_agent(tmp_path / "agent", SCANNER_LIMITS) as agent:
                port.append(agent.port)
                ca_file.append(str(agent.config_dir / "ca.pem"))
                ready.set()
                while not done.is_set():
                    await asyncio.sleep(0.05)

        asyncio.run(main())

    thread = threading.Thread(target=serve_agent, daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        result = subprocess.run(
            # The agent's CA is private: clients pin it, so sslyze is given it as a trust anchor.
            [
                sslyze,
                "--mozilla_config=modern",
                f"--certinfo_ca_file={ca_file[0]}",
                f"127.0.0.1:{port[0]}",
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        done.set()
        thread.join(10)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"127.0.0.1:{port[0]}: OK - Compliant." in output, output


_ = ssl
