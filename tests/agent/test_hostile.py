"""Hostile LAN: each budget attacked through the real agent on loopback (real TLS, real login).

Attackers use their own loopback addresses (127.0.0.x) so their blocks never touch the good
client on 127.0.0.1, which keeps logging in and getting answers throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.binary import encode_frame
from pi_secure_ws_protocol.const import PATH, SUBPROTOCOL, CloseCode
from pi_secure_ws_protocol.errors import CannotConnect, CommandError, RequestTimeout
from pi_secure_ws_testing.agent import AgentFactory, RunningAgent
from pi_secure_ws_testing.agent_toml import PORCH_LIGHT
from pi_secure_ws_testing.waiting import wait_for
from pi_secure_ws_testing.wire import (
    http_exchange,
    insecure_context,
    raw_connect,
    raw_exchange,
    scram_login,
)
from PIL import Image
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

TIGHT = """
[limits]
login_timeout = 1.0
prelogin_work_burst = 32
prelogin_work_per_second = 2
[blocklist]
threshold = 3
base_delay = 30
max_delay = 60
"""


def server_of(agent: RunningAgent) -> Any:
    assert agent.app.server is not None
    return agent.app.server


def upgrade(extra: str = "", line: str = f"GET {PATH} HTTP/1.1", key: str = "") -> bytes:
    key = key or "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    return (
        f"{line}\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{key}"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n{extra}\r\n"
    ).encode()


async def _drain(ws: ClientConnection) -> None:
    while True:
        await ws.recv()


async def good_client_works(agent: RunningAgent) -> None:
    client = await agent.connected_client()
    await client.ping()
    await client.close()


# ---- before login ---------------------------------------------------------------------------


async def test_prelogin_ping_flood_is_cut_and_ends_in_a_block(agent_factory: AgentFactory) -> None:
    async with agent_factory(TIGHT) as agent:
        server = server_of(agent)
        pings_answered = []
        for _ in range(6):  # threshold 3: sockets cut for flooding or refused, then the block
            if server.blocklist.retry_after("127.0.0.21") is not None:
                break
            try:
                ws = await raw_connect(agent, source="127.0.0.21", ping_interval=None)
            except (OSError, ssl.SSLError, InvalidStatus):
                await asyncio.sleep(0.5)
                continue
            answered = 0
            with contextlib.suppress(ConnectionClosed, OSError):
                for _ in range(10_000):
                    await asyncio.wait_for(await ws.ping(), 5)
                    answered += 1
            pings_answered.append(answered)
        # Each socket got at most its source's burst of work (32 units), never thousands.
        assert all(n <= 32 for n in pings_answered), pings_answered
        assert server.blocklist.retry_after("127.0.0.21") is not None
        with pytest.raises(InvalidStatus) as err:
            await raw_connect(agent, source="127.0.0.21", ping_interval=None)
        assert err.value.response.status_code == 429
        with pytest.raises((OSError, ssl.SSLError, TimeoutError)):
            await raw_connect(
                agent, source="127.0.0.21", ping_interval=None
            )  # told once; now dropped at accept, no TLS
        await good_client_works(agent)


async def test_a_socket_held_to_the_login_deadline_counts_as_a_failure(
    agent_factory: AgentFactory,
) -> None:
    async with agent_factory(TIGHT) as agent:
        server = server_of(agent)
        ws = await raw_connect(agent, source="127.0.0.22", ping_interval=None)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(_drain(ws), 10)
        await asyncio.sleep(0.1)
        assert server.blocklist.failures("127.0.0.22") == 1


async def test_reconnecting_too_often_spends_the_budget_and_ends_in_a_block(
    agent_factory: AgentFactory,
) -> None:
    async with agent_factory(TIGHT) as agent:
        server = server_of(agent)
        outcomes = []
        for _ in range(40):  # TLS handshakes cost 4 units each: 8 fit in a burst of 32
            try:
                _reader, writer = await asyncio.open_connection(
                    "127.0.0.1", agent.port, ssl=insecure_context(), local_addr=("127.0.0.23", 0)
                )
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
                outcomes.append("tls")
            except (OSError, ssl.SSLError):
                outcomes.append("refused")
        assert outcomes.count("tls") <= 12, outcomes
        assert server.blocklist.retry_after("127.0.0.23") is not None
        await good_client_works(agent)


# ---- the upgrade ----------------------------------------------------------------------------

MALFORMED = {
    "two Origin headers": upgrade("Origin: https://a.example\r\nOrigin: https://b.example\r\n"),
    "two Host headers": upgrade("Host: other\r\n"),
    "two keys": upgrade("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
    "bad key": upgrade(key="Sec-WebSocket-Key: short\r\n"),
    "no key": upgrade(key="X-Nothing: 1\r\n"),
    "POST": upgrade(line=f"POST {PATH} HTTP/1.1"),
    "HTTP/1.0": upgrade(line=f"GET {PATH} HTTP/1.0"),
    "garbage": b"\x00\x01\x02 hello\r\n\r\n",
    "pipelined": upgrade() + upgrade(),
    "version 8": upgrade().replace(b"Version: 13", b"Version: 8"),
    "no upgrade header": upgrade().replace(b"Upgrade: websocket\r\n", b""),
    "huge header": upgrade("X-Big: " + "a" * 20000 + "\r\n"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_every_malformed_upgrade_gets_a_4xx_one_line_and_no_traceback(
    agent: RunningAgent, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    caplog.set_level(logging.DEBUG)
    status, head, body = await http_exchange(agent, MALFORMED[name], "127.0.0.30")
    assert 400 <= status < 500, (name, head)
    assert body.count(b"\n") == 1 and body.endswith(b"\n"), body
    assert b"\r\nServer:" not in head
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert server_of(agent).blocklist.failures("127.0.0.30") == 1  # it counts against the source
    await good_client_works(agent)


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        (f"GET {PATH} HTTP/1.0", b"Only HTTP/1.1 upgrades.\n"),
        (f"GET {PATH} HTTP/2.0", b"Only HTTP/1.1 upgrades.\n"),
        (f"GET {PATH}", b"Only HTTP/1.1 upgrades.\n"),
        (f"GET  {PATH} HTTP/1.1", b"Only HTTP/1.1 upgrades.\n"),
        (f"PUT {PATH} HTTP/1.1", b"Only GET upgrades.\n"),
    ],
)
async def test_bad_request_lines_are_answered_by_admission_itself(
    agent: RunningAgent, line: str, answer: bytes
) -> None:
    # Our own words, from the check before websockets parses: not a library status rewritten.
    status, head, body = await http_exchange(agent, upgrade(line=line), "127.0.0.32")
    assert status == (405 if line.startswith("PUT") else 400), head
    assert body == answer
    assert server_of(agent).blocklist.failures("127.0.0.32") == 1
    await good_client_works(agent)


async def test_a_flood_of_malformed_upgrades_is_blocked_and_its_log_bounded(
    agent_factory: AgentFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with agent_factory(TIGHT) as agent:
        answers = []
        for _ in range(60):
            try:
                status, _, _ = await http_exchange(
                    agent, MALFORMED["two Host headers"], "127.0.0.31"
                )
            except (OSError, ssl.SSLError):
                status = 0
            answers.append(status)
        assert answers[:3] == [400, 400, 400]
        assert 429 in answers
        assert answers[-1] == 0  # dropped at accept, before TLS
        lines = [r for r in caplog.records if r.name.startswith("pi_agent")]
        assert len(lines) <= 15
        await good_client_works(agent)


# ---- numbers and one answer per request -----------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        '{"v":1,"type":"call","id":5,"device":"porch","action":"turn_on","params":{"brightness":1e400}}',
        '{"v":1,"type":"call","id":5,"device":"porch","action":"turn_on","params":{"transition":-1e999}}',
        '{"v":1,"type":"call","id":5,"device":"porch","action":"turn_on","params":{"brightness":'
        + "9" * 30
        + "}}",
        '{"v":true,"type":"ping","id":5}',
        '{"v":1.0,"type":"ping","id":5}',
    ],
)
async def test_overflowing_numbers_and_fake_versions_get_invalid_message(
    agent_factory: AgentFactory, frame: str
) -> None:
    async with agent_factory(PORCH_LIGHT) as agent:
        reply = await raw_exchange(agent, frame)
        assert reply["code"] == m.ERR_INVALID_MESSAGE
        assert reply["id"] == 5


DEVICES = """
[[light]]
id = "porch"
name = "Porch"
pin = 17
dimmable = true
[sprinklers]
[[sprinklers.zone]]
id = "lawn"
pin = 22
[frame]
[camera]
backend = "test_pattern"
width = 160
height = 120
"""
HOSTILE_VALUES: list[Any] = [1e308, -1e308, 2**53 - 1, -(2**53), 0, "x" * 300, None, [], {}, True]


async def test_every_action_answers_every_hostile_parameter_exactly_once(
    agent_factory: AgentFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # The rate limiter has its own tests; here every call must reach its handler, however fast
    # this machine sends them.
    async with agent_factory("[limits]\nmessages_per_second = 100000\n" + DEVICES) as agent:
        client = await agent.connected_client()
        answers = 0
        asked = 0
        unanswered = []
        for device in agent.app.devices.values():
            if device.id == "system":
                continue  # restart and reboot act on the machine
            for name, action in device.actions().items():
                keys = [str(k) for k in getattr(action.schema, "schema", {}) or {}] or ["x"]
                for key in keys:
                    for value in HOSTILE_VALUES:
                        asked += 1
                        try:
                            result = await client.call(device.id, name, {key: value}, timeout=30)
                        except RequestTimeout:
                            unanswered.append((device.id, name, key, value))
                        except CommandError:
                            answers += 1
                        else:
                            answers += 1
                            if isinstance(result, dict) and isinstance(result.get("stream"), int):
                                await client._request(m.STREAM_STOP, stream=result["stream"])
        assert not unanswered
        assert answers == asked
        assert client.connected
        # A misbehaving parameter never writes a traceback per call.
        assert len([r for r in caplog.records if r.exc_info]) <= 5


# ---- after login: frame sizes, sessions, rate -----------------------------------------------


@pytest.mark.parametrize(
    ("client_id", "kind", "closed"),
    [
        ("wall_panel", "text", True),
        ("wall_panel", "binary", True),
        ("homeassistant", "text", True),
        ("homeassistant", "binary", False),
    ],
)
async def test_frame_sizes_by_role_and_kind(
    agent_factory: AgentFactory, client_id: str, kind: str, closed: bool
) -> None:
    clients = {"homeassistant": "control", "wall_panel": "viewer"}
    async with agent_factory(clients=clients) as agent:
        client = await agent.connected_client(client_id)
        ws = client._ws
        assert ws is not None
        big = 1024 * 1024
        if kind == "text":
            await ws.send('{"v":1,"type":"ping","id":1,"pad":"' + "x" * big + '"}')
        else:
            message = {"v": 1, "type": "call", "id": 1, "device": "system", "action": "refresh"}
            await ws.send(encode_frame(message, b"\0" * big))
        await asyncio.sleep(0.5)
        if closed:
            assert ws.close_code == CloseCode.MESSAGE_TOO_BIG
        else:
            assert ws.close_code is None
            await client.ping()


async def test_sessions_are_capped_per_client_and_in_total(agent_factory: AgentFactory) -> None:
    toml = "[limits]\nmax_sessions = 3\nmax_sessions_per_client = 2\n"
    clients = {"homeassistant": "control", "wall_panel": "viewer", "tablet": "viewer"}
    async with agent_factory(toml, clients=clients) as agent:
        first = await agent.connected_client("wall_panel")
        second = await agent.connected_client("wall_panel")
        third = await agent.connected_client("wall_panel")
        await asyncio.sleep(0.3)
        assert not first.connected  # the oldest gave way
        await second.ping()
        await third.ping()
        await agent.connected_client("tablet")
        with pytest.raises(CannotConnect):
            await agent.connected_client("homeassistant")
        assert len(server_of(agent).sessions) == 3


async def test_a_flooding_session_is_closed_and_others_go_on(
    agent_factory: AgentFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with agent_factory(
        "[limits]\nmessages_per_second = 20\nflood_close_after = 1\n"
    ) as agent:
        flooder = await agent.connected_client()
        other = await agent.connected_client()
        ws = flooder._ws
        assert ws is not None
        ping = m.encode(m.PING, id=1)

        async def flood() -> None:
            with contextlib.suppress(ConnectionClosed):
                async with asyncio.timeout(20):
                    while True:
                        await ws.send(ping)

        task = asyncio.create_task(flood())
        for _ in range(5):
            await other.ping()  # answered while the flood runs
            await asyncio.sleep(0.1)
        await task
        # The agent closes with 1008. The flooder sees 1008, or 1006 where the agent's TCP reset
        # overtook its close frame: the agent stops reading a flooder, so the flooder's own
        # frames stay unread behind it.
        assert ws.close_code in (CloseCode.POLICY_VIOLATION, 1006)  # 1006: abnormal closure
        assert any("closed for a message flood" in r.getMessage() for r in caplog.records)
        await other.ping()
        # Counted against the source: a client flooding again after each login ends up blocked.
        assert server_of(agent).blocklist.failures("127.0.0.1") == 1


async def test_a_flood_is_slowed_by_the_reader_not_refused_frame_by_frame(
    agent_factory: AgentFactory,
) -> None:
    # Never closed in this test: what it measures is how many refusals the agent pays for.
    toml = "[limits]\nmessages_per_second = 20\nflood_close_after = 60\n"
    async with agent_factory(toml) as agent:
        other = await agent.connected_client()
        ping = m.encode(m.PING, id=1)
        sent = 0

        async def flood() -> tuple[float, int]:
            # On its own thread and event loop, so the flood is not paced by the agent's loop.
            nonlocal sent
            ws = await raw_connect(agent, source="127.0.0.1", ping_interval=None)
            answer, _final = await scram_login(ws, "homeassistant", agent.secret)
            assert answer["type"] == m.AUTH_SERVER_FINAL
            drain = asyncio.create_task(_drain(ws))  # read every answer: no back-pressure here
            started = time.monotonic()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.5):
                    while time.monotonic() < started + 1.5:
                        await ws.send(ping)
                        sent += 1
            elapsed = time.monotonic() - started
            refused = sum(session.refused for session in server_of(agent).sessions)
            drain.cancel()
            ws.transport.abort()  # not a close handshake behind the backlog
            return elapsed, refused

        elapsed, refused = await asyncio.to_thread(asyncio.run, flood())
        # The reader pauses after each refusal (websockets stops reading the socket), so the
        # refusals the agent pays for are bounded by time, at four times the rate, not by what
        # the flooder can write.
        assert sent > refused
        assert 0 < refused <= 4 * 20 * (elapsed + 1.0)
        await other.ping()


# ---- pictures and the camera ----------------------------------------------------------------


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


async def test_picture_bombs_are_refused_before_decoding(agent_factory: AgentFactory) -> None:
    async with agent_factory("[frame]\n") as agent:
        client = await agent.connected_client()
        bomb = _png(7999, 7999)  # a few hundred KB that decode to 64 Mpx
        with pytest.raises(CommandError) as err:
            await client.call("frame", "put_picture", {"name": "bomb.png"}, data=bomb)
        assert err.value.code == m.ERR_REFUSED
        assert "Mpx" in str(err.value)


async def test_concurrent_thumbnails_of_a_bomb_are_refused_not_decoded(
    agent_factory: AgentFactory,
) -> None:
    clients = {"homeassistant": "control", "wall_panel": "viewer"}
    # The costly-call budget opened wide: this tests the decode budget behind it.
    toml = "[limits]\ncostly_calls_burst = 100\n[frame]\n"
    async with agent_factory(toml, clients=clients) as agent:
        pictures = agent.config_dir / "state" / "pictures"
        pictures.mkdir(parents=True, exist_ok=True)
        (pictures / "bomb.png").write_bytes(_png(7999, 7999))
        (pictures / "ok.png").write_bytes(_png(400, 300))
        control = await agent.connected_client()
        await control.call("frame", "show", {"name": "ok.png"})
        viewer = await agent.connected_client("wall_panel")
        results = await asyncio.gather(
            *(viewer.call("frame", "thumbnail", {"size": 64}) for _ in range(8))
        )
        assert all(r.header["name"] == "ok.png" for r in results)
        frame = agent.app.devices["frame"]
        errors = await asyncio.gather(
            *(frame._display("bomb.png") for _ in range(4))  # type: ignore[attr-defined]
        )
        assert errors == [False] * 4  # refused from its header: "too many pixels"


async def test_stream_churn_does_not_freeze_another_stream(agent_factory: AgentFactory) -> None:
    # The costly-call budget opened wide and no linger: this tests the camera loop behind them.
    toml = (
        "[limits]\ncostly_calls_burst = 100\n"
        '[camera]\nbackend = "test_pattern"\nwidth = 160\nheight = 120\nstream_linger = 0\n'
    )
    clients = {"homeassistant": "control", "wall_panel": "viewer"}
    async with agent_factory(toml, clients=clients) as agent:
        watcher = await agent.connected_client()
        stream = await watcher.stream("camera", "stream", {"fps": 5})
        churner = await agent.connected_client("wall_panel")
        received = 0

        async def watch() -> None:
            nonlocal received
            async for _frame in stream:
                received += 1

        watching = asyncio.create_task(watch())
        camera = agent.app.devices["camera"]
        captured = camera.frames_captured  # type: ignore[attr-defined]
        for _ in range(40):  # 80 messages: within the session's burst
            result = await churner.call("camera", "stream", {"fps": 1})
            await churner._request(m.STREAM_STOP, stream=result["stream"])
        await asyncio.sleep(1.5)
        watching.cancel()
        # The churn costs no captures of its own, and the watcher kept getting frames.
        assert received >= 3
        assert camera.frames_captured - captured <= received + 15  # type: ignore[attr-defined]


async def test_costly_calls_are_budgeted_per_client_with_one_answer_each(
    agent_factory: AgentFactory,
) -> None:
    toml = (
        "[limits]\ncostly_calls_burst = 3\ncostly_calls_per_second = 0.2\n[frame]\n"
        '[camera]\nbackend = "test_pattern"\nwidth = 160\nheight = 120\n'
    )
    clients = {"homeassistant": "control", "wall_panel": "viewer"}
    async with agent_factory(toml, clients=clients) as agent:
        pictures = agent.config_dir / "state" / "pictures"
        pictures.mkdir(parents=True, exist_ok=True)
        (pictures / "ok.png").write_bytes(_png(400, 300))
        control = await agent.connected_client()
        await control.call("frame", "show", {"name": "ok.png"})
        # Two sessions of one viewer share its budget: more sessions buy no more decodes.
        first = await agent.connected_client("wall_panel")
        second = await agent.connected_client("wall_panel")
        calls = [
            session.call("frame", "thumbnail", {"size": 16 + i})
            for i, session in enumerate([first, second] * 6)
        ]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, CommandError)]
        served = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(refused) + len(served) == len(outcomes)  # every call got its one answer
        assert {e.code for e in refused} == {m.ERR_RATE_LIMITED}
        assert 3 <= len(served) <= 4  # the burst, and at most one refill during the test
        # A refused stream start opens nothing: the camera has no subscriber for it.
        camera = agent.app.devices["camera"]
        for _ in range(3):
            with pytest.raises(CommandError) as err:
                await first.call("camera", "stream", {"fps": 1})
            assert err.value.code == m.ERR_RATE_LIMITED
        assert camera.state()["subscribers"] == 0
        assert len(server_of(agent).sessions[-1].streams) == 0
        # Another client's budget is its own: the control client still gets its thumbnail.
        result = await control.call("frame", "thumbnail", {"size": 64})
        assert result.header["name"] == "ok.png"
        await first.ping()  # the viewer's session itself goes on


async def test_the_memory_budget_refuses_work_that_would_exceed_it(
    agent_factory: AgentFactory,
) -> None:
    # 1 MiB for the whole agent (it must hold the largest upload twice: frame and payload).
    toml = "[limits]\nmemory_budget = 1048576\n[frame]\nmax_upload_bytes = 262144\n"
    async with agent_factory(toml) as agent:
        server = server_of(agent)
        client = await agent.connected_client()
        # A message that cannot fit is refused whole, with one answer, before it is handled.
        with pytest.raises(CommandError) as err:
            await client.call("frame", "put_picture", {"name": "big.png"}, data=b"x" * 600_000)
        assert err.value.code == m.ERR_REFUSED
        assert "memory budget" in str(err.value)
        # A small file whose decode would not fit (600x600 RGB: over 1 MiB decoded) is refused
        # from its header, before the decode.
        with pytest.raises(CommandError) as err:
            await client.call("frame", "put_picture", {"name": "wide.png"}, data=_png(600, 600))
        assert err.value.code == m.ERR_REFUSED
        assert "memory budget" in str(err.value)
        # What fits is served, and every reservation was given back.
        await client.call("frame", "put_picture", {"name": "ok.png"}, data=_png(100, 80))
        many = await asyncio.gather(*(client.ping() for _ in range(20)), return_exceptions=True)
        assert not [r for r in many if isinstance(r, BaseException)]
        await wait_for(lambda: server.memory.in_use == 0, timeout=5)
        assert 0 < server.memory.peak <= server.memory.total
        assert server.memory.refusals == 2
        assert agent.app.devices["frame"]._budget.memory is server.memory  # type: ignore[attr-defined]


# ---- logs -----------------------------------------------------------------------------------


async def test_no_frame_and_no_part_of_a_proof_is_logged_at_debug(
    agent: RunningAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ws = await raw_connect(agent, source="127.0.0.1", ping_interval=None)
    answer, final = await scram_login(ws, "homeassistant", agent.secret)
    assert answer["type"] == m.AUTH_SERVER_FINAL
    await ws.close()
    client = await agent.connected_client()
    await client.ping()
    text = "\n".join(r.getMessage() for r in caplog.records)
    proof = final.rsplit("p=", 1)[1]
    nonce = final.split("r=", 1)[1].split(",", 1)[0]
    for secret in (proof, nonce, answer["message"], agent.secret):
        for start in range(0, len(secret) - 8, 4):
            assert secret[start : start + 8] not in text
    assert not [r for r in caplog.records if r.name.startswith("websockets")]


def test_limits_table_documents_every_limit() -> None:
    from dataclasses import fields

    from pi_agent.config import Limits

    docs = Path(__file__).resolve().parents[2] / "docs" / "security.md"
    text = docs.read_text()
    for field in fields(Limits):
        assert f"`{field.name}`" in text, field.name


async def test_stop_accepting_refuses_every_command_and_new_sessions(
    agent_factory: AgentFactory,
) -> None:
    async with agent_factory(PORCH_LIGHT) as agent:
        client = await agent.connected_client()
        server_of(agent).stop_accepting()
        with pytest.raises(CommandError) as err:
            await client.call("porch", "turn_on")
        assert err.value.code == m.ERR_REFUSED
        assert agent.app.devices["porch"].state()["on"] is False
        await client.ping()  # the session itself stays until stop()
        with pytest.raises(CannotConnect):
            await agent.connected_client()
