"""Talking to a test agent below the client library: raw WSS connections, the SCRAM login run by
hand, one raw frame through a logged-in client. For tests that send what a well-behaved client
never would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from typing import Any

from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.const import MECHANISM, PATH, SUBPROTOCOL
from pi_secure_ws_protocol.pinning import tls_server_end_point
from pi_secure_ws_protocol.scram import ClientExchange
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .agent import RunningAgent


def insecure_context() -> ssl.SSLContext:
    """TLS without verification: an attacker's (or a test's) side, which pins nothing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def tls13_context() -> ssl.SSLContext:
    """TLS 1.3 only, without verification: what docs/protocol.md asks of a client (the pin is
    checked after auth_start), and the benchmarks' floor."""
    context = insecure_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


async def raw_connect(
    agent: RunningAgent, path: str = PATH, *, source: str | None = None, **kwargs: Any
) -> ClientConnection:
    """A WSS connection to ``agent`` with no login done; from the loopback address ``source``
    when given (each 127.x.y.z is another machine to the agent's block list)."""
    kwargs.setdefault("subprotocols", [SUBPROTOCOL])
    kwargs.setdefault("compression", None)
    kwargs.setdefault("open_timeout", 5)
    if source is not None:
        kwargs.setdefault("local_addr", (source, 0))
    return await connect(f"wss://127.0.0.1:{agent.port}{path}", ssl=insecure_context(), **kwargs)


async def instead_of_the_login(
    agent: RunningAgent, frame: str | bytes
) -> tuple[dict[str, Any], int | None]:
    """Send ``frame`` where the login should start; return the agent's answer and the close
    code of the connection, which the agent must close."""
    ws = await raw_connect(agent)
    json.loads(await ws.recv())  # auth_start
    await ws.send(frame)
    reply: dict[str, Any] = json.loads(await ws.recv())
    try:
        async with asyncio.timeout(5):
            await ws.recv()
    except ConnectionClosed:
        return reply, ws.close_code
    raise AssertionError(f"the agent answered {reply} but kept the connection open")


async def http_exchange(
    agent: RunningAgent, request: bytes, source: str | None = None
) -> tuple[int, bytes, bytes]:
    """Status (0: no HTTP answer), head and body of the agent's answer to a hand-written
    ``request`` over TLS, sent from ``source`` when given."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1",
        agent.port,
        ssl=insecure_context(),
        local_addr=(source, 0) if source is not None else None,
    )
    writer.write(request)
    await writer.drain()
    data = b""
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        async with asyncio.timeout(5):
            while chunk := await reader.read(4096):
                data += chunk
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, head, body


def leaf_of(ws: ClientConnection) -> bytes:
    """The DER certificate the agent presented on ``ws`` (what channel binding binds to)."""
    der: bytes = ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return der


async def scram_login(
    ws: ClientConnection, client_id: str, secret: str
) -> tuple[dict[str, Any], str]:
    """Run the client side by hand; return the agent's last answer and the client-final sent."""
    json.loads(await ws.recv())  # auth_start
    exchange = ClientExchange(client_id, secret, tls_server_end_point(leaf_of(ws)))
    await ws.send(
        m.encode(m.AUTH_CLIENT_FIRST, mechanism=MECHANISM, message=exchange.client_first())
    )
    server_first = json.loads(await ws.recv())
    final = exchange.client_final(server_first["message"])
    await ws.send(m.encode(m.AUTH_CLIENT_FINAL, message=final))
    return json.loads(await ws.recv()), final


async def raw_exchange(agent: RunningAgent, text: str | bytes) -> dict[str, object]:
    """Send ``text`` as one frame through a logged-in client; return the agent's error answer."""
    client = await agent.connected_client()
    ws = client._ws
    assert ws is not None
    future: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
    session = client._session  # the live connection's reader
    assert session is not None
    original = session._handle_text

    def capture(frame: str) -> None:
        data = json.loads(frame)
        if data["type"] == m.ERROR and not future.done():
            future.set_result(data)
        original(frame)

    session._handle_text = capture  # type: ignore[method-assign]
    await ws.send(text)
    return await asyncio.wait_for(future, 5)
