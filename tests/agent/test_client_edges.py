"""AgentClient against agents that misbehave: each failure is one typed error, never a traceback.

The fake agents hold the real agent's certificate (so the client's pinning passes) and then break
the login in one way each; the raw TCP servers are not agents at all.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.client import AgentClient, ClientStream
from pi_secure_ws_protocol.const import MECHANISM, SUBPROTOCOL, CloseCode
from pi_secure_ws_protocol.errors import (
    Blocked,
    CannotConnect,
    InvalidAuth,
    PiSecureWsError,
    ProtocolError,
    error_for_close,
)
from pi_secure_ws_protocol.session import Session
from pi_secure_ws_protocol.tls import PinnedContext
from pi_secure_ws_testing.agent import RunningAgent
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from pi_agent import pki

Script = Callable[[ServerConnection, str], Awaitable[None]]


@asynccontextmanager
async def fake_agent(
    agent: RunningAgent, script: Script, *, subprotocols: bool = True
) -> AsyncIterator[AgentClient]:
    """A WSS server with the agent's certificate that runs ``script``; a client paired to it."""
    ca_pem = pki.ca_pem(agent.config_dir)

    async def handler(ws: ServerConnection) -> None:
        await script(ws, ca_pem)
        await asyncio.sleep(0.5)

    async with serve(
        handler,
        "127.0.0.1",
        0,
        ssl=pki.server_ssl_context(agent.config_dir),
        subprotocols=[SUBPROTOCOL] if subprotocols else None,  # type: ignore[list-item]
    ) as server:
        client = agent.client(port=server.sockets[0].getsockname()[1], connect_timeout=5)
        yield client
        await client.close()


async def auth_start(
    ws: ServerConnection, ca_pem: str, mechanisms: list[str] | None = None
) -> None:
    await ws.send(m.encode(m.AUTH_START, mechanisms=mechanisms or [MECHANISM], ca=ca_pem))


async def offers_another_mechanism(ws: ServerConnection, ca_pem: str) -> None:
    await auth_start(ws, ca_pem, ["PLAIN"])


async def sends_binary(ws: ServerConnection, ca_pem: str) -> None:
    await ws.send(b"\x00\x02{}")


async def closes_at_once(ws: ServerConnection, ca_pem: str) -> None:
    await ws.close(CloseCode.PROTOCOL_ERROR, "no thanks")


async def skips_auth_start(ws: ServerConnection, ca_pem: str) -> None:
    await ws.send(m.encode(m.AUTH_SERVER_FIRST, message="r=x,s=AAAA,i=4096"))


async def fails_with_an_unknown_reason(ws: ServerConnection, ca_pem: str) -> None:
    await auth_start(ws, ca_pem)
    await ws.send(m.encode(m.AUTH_FAILED, reason="maintenance"))


async def blocks(ws: ServerConnection, ca_pem: str) -> None:
    await auth_start(ws, ca_pem)
    await ws.send(m.encode(m.AUTH_FAILED, reason=m.REASON_BLOCKED, retry_after=7))


async def refuses(ws: ServerConnection, ca_pem: str) -> None:
    await auth_start(ws, ca_pem)
    await ws.send(m.encode(m.AUTH_FAILED, reason=m.REASON_INVALID_AUTH))


async def asks_for_a_million_iterations(ws: ServerConnection, ca_pem: str) -> None:
    await auth_start(ws, ca_pem)
    first = json.loads(await ws.recv())
    nonce = first["message"].split("r=", 1)[1]
    await ws.send(m.encode(m.AUTH_SERVER_FIRST, message=f"r={nonce}x,s=c2FsdA==,i=1000000"))


@pytest.mark.parametrize(
    ("script", "error", "match"),
    [
        (offers_another_mechanism, ProtocolError, "does not offer"),
        (sends_binary, ProtocolError, "binary frame during login"),
        (closes_at_once, ProtocolError, "no thanks"),
        (skips_auth_start, ProtocolError, "expected auth_start"),
        (fails_with_an_unknown_reason, ProtocolError, "login failed: maintenance"),
        (blocks, Blocked, "7"),
        (refuses, InvalidAuth, "wrong secret"),
        (asks_for_a_million_iterations, ProtocolError, "iteration count 1000000"),
    ],
)
async def test_a_broken_login_is_one_typed_error(
    agent: RunningAgent, script: Script, error: type[PiSecureWsError], match: str
) -> None:
    async with fake_agent(agent, script) as client:
        with pytest.raises(error, match=match):
            await client.connect()
        assert not client.connected


async def test_an_agent_that_picks_no_subprotocol_is_refused(agent: RunningAgent) -> None:
    async with fake_agent(agent, auth_start, subprotocols=False) as client:
        with pytest.raises(ProtocolError, match="subprotocol"):
            await client.connect()


@asynccontextmanager
async def tcp_server(
    answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await answer(reader, writer)
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def http_answer(status: str, headers: str = "") -> Callable[..., Awaitable[None]]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n{headers}\r\n".encode())
        await writer.drain()
        await asyncio.sleep(0.5)

    return answer


@pytest.mark.parametrize(
    ("status", "headers", "error", "match"),
    [
        ("200 OK", "", CannotConnect, "HTTP 200"),
        # A Retry-After that is not a number waits the minimum instead of failing.
        ("429 Too Many Requests", "Retry-After: soon\r\n", Blocked, "1"),
        ("101 Switching Protocols", "Upgrade: websocket\r\n", CannotConnect, "not a pi_secure_ws"),
    ],
)
async def test_a_tls_server_that_is_no_agent(
    agent: RunningAgent,
    status: str,
    headers: str,
    error: type[PiSecureWsError],
    match: str,
) -> None:
    tls = pki.server_ssl_context(agent.config_dir)
    async with tcp_server(http_answer(status, headers), tls) as port:
        client = agent.client(port=port, connect_timeout=5)
        with pytest.raises(error, match=match):
            await client.connect()


async def test_a_server_without_tls_is_a_tls_failure(agent: RunningAgent) -> None:
    async def plaintext(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n" * 20)
        await writer.drain()
        await asyncio.sleep(0.5)

    async with tcp_server(plaintext) as port:
        client = agent.client(port=port, connect_timeout=5)
        with pytest.raises(CannotConnect, match="TLS failed"):
            await client.connect()


async def test_a_server_that_never_answers_times_out(agent: RunningAgent) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async with tcp_server(silent) as port:
        client = agent.client(port=port, connect_timeout=0.3)
        with pytest.raises(CannotConnect, match="timed out"):
            await client.connect()


# ---- the session's own edges, with the real agent -----------------------------------------


async def test_calls_before_connecting_and_a_call_that_is_no_stream(agent: RunningAgent) -> None:
    client = agent.client()
    with pytest.raises(CannotConnect, match="not connected"):
        await client.call("system", "refresh")
    await client.connect()
    with pytest.raises(ProtocolError, match="did not start a stream"):
        await client.stream("system", "refresh")


async def test_a_listener_that_raises_does_not_break_the_client(
    agent: RunningAgent, caplog: pytest.LogCaptureFixture
) -> None:
    client = agent.client()
    seen: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    client.add_listener(broken)
    client.add_listener(seen.append)
    await client.connect()
    assert seen, "the next listener still got the event"
    assert "client listener failed" in caplog.text


async def test_a_closed_stream_ends_iteration_and_closes_once() -> None:
    session: Session = None  # type: ignore[assignment]  # a closed stream never reaches it
    stream = ClientStream(session, 3, {"stream": 3})
    stream.closed = True
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    await stream.close()  # already closed: nothing to tell the agent


def test_a_session_that_cannot_be_kept_is_dropped() -> None:
    class NoSession:
        @property
        def session(self) -> Any:
            raise ValueError("no session")

    context = PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.keep_session_of(NoSession())  # type: ignore[arg-type]
    assert context.tls_session is None


@pytest.mark.parametrize(
    ("code", "reason", "error", "match"),
    [
        (CloseCode.INVALID_AUTH, "", InvalidAuth, "refused the login"),
        (CloseCode.CREDENTIALS_REVOKED, "", InvalidAuth, "revoked"),
        (CloseCode.BLOCKED, "", Blocked, ""),
        (CloseCode.PROTOCOL_ERROR, "", ProtocolError, "protocol error"),
        (CloseCode.PROTOCOL_ERROR, "bad frame", ProtocolError, "bad frame"),
        (1011, "", CannotConnect, r"\(1011\)"),
        (1011, "oops", CannotConnect, r"\(1011: oops\)"),
    ],
)
def test_close_codes_become_typed_errors(
    code: int, reason: str, error: type[PiSecureWsError], match: str
) -> None:
    result = error_for_close(code, reason or None)
    assert type(result) is error
    assert re.search(match, str(result))


async def test_a_stream_answered_on_a_session_that_has_ended_is_over_at_once() -> None:
    ended: list[Exception | None] = []
    session = Session(
        None,  # type: ignore[arg-type]  # never started: no connection is touched
        ids=iter(range(1, 10)),
        stats={"requests": 0},
        request_timeout=1.0,
        on_state=lambda device, state: None,
        on_end=lambda session, error: ended.append(error),
        peer="127.0.0.1:1",
    )
    stream = session.add_stream(3, {"stream": 3})
    assert stream.closed and session.streams == {}
    assert [frame async for frame in stream] == []
    with pytest.raises(CannotConnect, match="not connected"):
        await session.request(m.PING)
    assert ended == []


async def test_a_session_skips_what_a_newer_agent_adds_and_ends_on_a_broken_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Over a real websocket: an unknown message type is ignored, a malformed one ends the
    session, and the request still waiting fails with the reason instead of its timeout."""

    async def newer_then_broken_agent(ws: ServerConnection) -> None:
        first = json.loads(await ws.recv())
        await ws.send(m.encode("news_from_the_future", detail=1))
        await ws.send(m.encode(m.RESULT, id=first["id"], data={"answered": True}))
        await ws.recv()  # the second request: answered with something no agent may send
        await ws.send(m.encode(m.RESULT, data={}))  # a result without an id
        await asyncio.sleep(5)

    ended: list[Exception | None] = []
    async with serve(newer_then_broken_agent, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as ws:
            session = Session(
                ws,
                ids=iter(range(1, 10)),
                stats={"requests": 0},
                request_timeout=30.0,
                on_state=lambda device, state: None,
                on_end=lambda session, error: ended.append(error),
                peer=f"127.0.0.1:{port}",
            )
            session.start()
            assert await session.request(m.PING) == {"answered": True}
            with pytest.raises(ProtocolError):
                await session.request(m.PING)
    assert len(ended) == 1 and isinstance(ended[0], ProtocolError)
    assert session.pending == {} and not session.alive
    assert "broke the protocol" in caplog.text
