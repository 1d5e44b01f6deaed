"""The mutual SCRAM-SHA-256-PLUS login, attacked from every side, over real TLS on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.const import MECHANISM, SUBPROTOCOL, CloseCode
from pi_secure_ws_protocol.devices import SystemState
from pi_secure_ws_protocol.errors import (
    CertificateMismatch,
    InvalidAuth,
    ServerAuthFailed,
)
from pi_secure_ws_protocol.pinning import tls_server_end_point
from pi_secure_ws_protocol.scram import ClientExchange, ServerExchange, make_verifier
from pi_secure_ws_protocol.secret import generate_secret, normalize_secret
from pi_secure_ws_testing.agent import RunningAgent, make_config_dir, running_agent
from pi_secure_ws_testing.wire import instead_of_the_login, leaf_of, raw_connect, scram_login
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pi_agent import pki


async def test_login_gives_hello_with_agent_and_devices(agent: RunningAgent) -> None:
    client = agent.client()
    hello = await client.connect()
    assert hello.agent_id == agent.app.config.agent_id  # type: ignore[union-attr]
    assert hello.name == "Test Pi"
    assert hello.role == "control"
    assert hello.client_id == "homeassistant"
    assert "system" in hello.devices
    assert hello.devices["system"].kind == "system"
    system = hello.states["system"]
    assert isinstance(system, SystemState)
    assert system.hostname
    assert client.connected
    assert agent.app.server.stats["logins"] == 1  # type: ignore[union-attr]


async def test_a_pinned_client_may_send_client_first_before_reading_auth_start(
    agent: RunningAgent,
) -> None:
    """What AgentClient does once TLS has verified the pinned CA: the agent still speaks first,
    but the client does not wait for it; the agent's proof then arrives with the hello."""
    ws = await raw_connect(agent)
    exchange = ClientExchange("homeassistant", agent.secret, tls_server_end_point(leaf_of(ws)))
    await ws.send(
        m.encode(m.AUTH_CLIENT_FIRST, mechanism=MECHANISM, message=exchange.client_first())
    )
    start = json.loads(await ws.recv())
    assert start["type"] == m.AUTH_START
    server_first = json.loads(await ws.recv())
    assert server_first["type"] == m.AUTH_SERVER_FIRST
    final = exchange.client_final(server_first["message"])
    await ws.send(m.encode(m.AUTH_CLIENT_FINAL, message=final))
    server_final = json.loads(await ws.recv())
    assert server_final["type"] == m.AUTH_SERVER_FINAL
    exchange.verify_server_final(server_final["message"])
    hello = json.loads(await ws.recv())
    assert hello["type"] == m.HELLO
    await ws.close()


async def test_secret_is_accepted_in_any_pasted_form(agent: RunningAgent) -> None:
    pasted = " " + agent.secret.lower().replace("-", " ") + "\n"
    client = agent.client(secret=pasted)
    await client.connect()


async def test_wrong_secret_and_unknown_client_get_the_same_answer(agent: RunningAgent) -> None:
    answers = []
    for client_id, secret in (("homeassistant", generate_secret()), ("mallory", agent.secret)):
        ws = await raw_connect(agent)
        answer, _ = await scram_login(ws, client_id, secret)
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        answers.append((answer, ws.close_code))
    assert answers[0] == answers[1]
    assert answers[0][0] == {"v": 1, "type": "auth_failed", "reason": "invalid_auth"}
    assert answers[0][1] == CloseCode.INVALID_AUTH
    for client_id, secret in (("homeassistant", generate_secret()), ("mallory", agent.secret)):
        with pytest.raises(InvalidAuth):
            await agent.client(client_id, secret=secret).connect()


async def test_unknown_client_gets_a_stable_salt_like_a_real_one(agent: RunningAgent) -> None:
    """A salt that changed on every try, or had another length, would reveal an unknown id."""
    salts = []
    for client_id in ("nobody", "nobody", "homeassistant"):
        ws = await raw_connect(agent)
        json.loads(await ws.recv())
        exchange = ClientExchange(client_id, "x", tls_server_end_point(leaf_of(ws)))
        await ws.send(
            m.encode(m.AUTH_CLIENT_FIRST, mechanism=MECHANISM, message=exchange.client_first())
        )
        server_first = json.loads(await ws.recv())["message"]
        salts.append(dict(p.split("=", 1) for p in server_first.split(","))["s"])
        await ws.close()
    assert salts[0] == salts[1]
    assert len(salts[0]) == len(salts[2])  # unknown and known ids look alike
    assert salts[0] != salts[2]


async def test_login_replayed_from_an_earlier_session_fails(agent: RunningAgent) -> None:
    ws = await raw_connect(agent)
    answer, recorded_final = await scram_login(ws, "homeassistant", agent.secret)
    assert answer["type"] == m.AUTH_SERVER_FINAL
    await ws.close()

    # An eavesdropper replays both messages of that login on a new connection.
    ws = await raw_connect(agent)
    json.loads(await ws.recv())
    recorded_first = (
        "p=tls-server-end-point,,n=homeassistant,r="
        + recorded_final.split("r=")[1].split(",")[0][:24]
    )
    await ws.send(m.encode(m.AUTH_CLIENT_FIRST, mechanism=MECHANISM, message=recorded_first))
    json.loads(await ws.recv())  # a new server nonce: the old proof cannot match
    await ws.send(m.encode(m.AUTH_CLIENT_FINAL, message=recorded_final))
    reply = json.loads(await ws.recv())
    assert reply["type"] == m.AUTH_FAILED
    with pytest.raises(ConnectionClosed):
        await ws.recv()


async def test_agent_with_another_ca_is_refused_before_login(
    agent: RunningAgent, agent_factory: Any
) -> None:
    async with agent_factory() as impostor:
        client = AgentClientFor(impostor, secret=agent.secret, fingerprint=agent.fingerprint)
        with pytest.raises(CertificateMismatch):
            await client.connect()
        # The impostor never saw a login message, let alone a proof.
        assert impostor.app.server.stats["login_failures"] == 0
        assert impostor.app.server.stats["logins"] == 0


def AgentClientFor(target: RunningAgent, **kwargs: Any) -> Any:
    return target.client(**kwargs)


async def test_pinned_ca_pem_makes_tls_itself_refuse_another_agent(
    agent: RunningAgent, agent_factory: Any
) -> None:
    first = agent.client()
    await first.connect()
    ca_pem = first.ca_pem
    async with agent_factory() as impostor:
        client = impostor.client(secret=agent.secret, fingerprint=agent.fingerprint, ca_pem=ca_pem)
        with pytest.raises(CertificateMismatch):
            await client.connect()
        assert impostor.app.server.stats["refused"] == 0  # TLS failed before any request


async def test_relaying_man_in_the_middle_cannot_log_in(
    agent: RunningAgent, tmp_path: Path
) -> None:
    """A relay with its own certificate: even a client tricked into pinning the relay's CA
    cannot be logged in to the real agent, because the proof is bound to the certificate seen."""
    relay_dir = tmp_path / "relay"
    relay_fingerprint, _ = make_config_dir(relay_dir)
    relay_ssl = pki.server_ssl_context(relay_dir)

    async def relay(downstream: ServerConnection) -> None:
        upstream = await raw_connect(agent)

        async def pump(src: Any, dst: Any) -> None:
            async for received in src:
                frame = received
                if isinstance(frame, str) and '"auth_start"' in frame:
                    # Show the victim the relay's CA so that its pin holds.
                    data = json.loads(frame)
                    data["ca"] = pki.ca_pem(relay_dir)
                    frame = json.dumps(data)
                await dst.send(frame)

        tasks = [
            asyncio.create_task(pump(upstream, downstream)),
            asyncio.create_task(pump(downstream, upstream)),
        ]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await upstream.close()

    async with serve(relay, "127.0.0.1", 0, ssl=relay_ssl, subprotocols=[SUBPROTOCOL]) as server:
        port = server.sockets[0].getsockname()[1]
        from pi_secure_ws_protocol.client import AgentClient

        victim = AgentClient(
            "127.0.0.1",
            port,
            client_id="homeassistant",
            secret=agent.secret,
            fingerprint=relay_fingerprint,
        )
        with pytest.raises((InvalidAuth, ServerAuthFailed)):
            await victim.connect()
        await victim.close()
    assert agent.app.server.stats["logins"] == 0  # type: ignore[union-attr]
    assert agent.app.server.stats["login_failures"] == 1  # type: ignore[union-attr]


async def test_client_rejects_an_agent_that_fails_its_proof(agent: RunningAgent) -> None:
    """A server holding the real certificate but not this client's verifier cannot prove itself."""
    ca_pem = pki.ca_pem(agent.config_dir)
    leaf = pki.load_leaf_cert(agent.config_dir)
    from cryptography.hazmat.primitives.serialization import Encoding

    cbind = tls_server_end_point(leaf.public_bytes(Encoding.DER))
    wrong = make_verifier(generate_secret())

    async def fake_agent(ws: ServerConnection) -> None:
        await ws.send(m.encode(m.AUTH_START, mechanisms=[MECHANISM], ca=ca_pem))
        exchange = ServerExchange(cbind, lambda _id: (wrong, True))
        first = json.loads(await ws.recv())
        await ws.send(
            m.encode(m.AUTH_SERVER_FIRST, message=exchange.server_first(first["message"]))
        )
        await ws.recv()
        # It cannot check the proof, so it pretends: a made-up server signature.
        fake = base64.b64encode(b"\x00" * 32).decode()
        await ws.send(m.encode(m.AUTH_SERVER_FINAL, message=f"v={fake}"))
        await ws.send(m.encode(m.HELLO, agent={}, session={}, devices=[], states={}))
        await asyncio.sleep(1)

    ssl_context = pki.server_ssl_context(agent.config_dir)
    async with serve(
        fake_agent, "127.0.0.1", 0, ssl=ssl_context, subprotocols=[SUBPROTOCOL]
    ) as srv:
        client = agent.client(port=srv.sockets[0].getsockname()[1])
        with pytest.raises(ServerAuthFailed):
            await client.connect()
        assert not client.connected


async def test_nothing_but_the_login_is_accepted_before_it(agent: RunningAgent) -> None:
    call = m.encode(m.CALL, id=1, device="system", action="refresh", params={})
    reply, close_code = await instead_of_the_login(agent, call)
    assert reply["type"] == m.AUTH_FAILED
    assert close_code == CloseCode.PROTOCOL_ERROR


async def test_client_final_sent_first_is_refused(agent: RunningAgent) -> None:
    """A reordered login (final before first) is a failure, not a crash."""
    ws = await raw_connect(agent)
    json.loads(await ws.recv())
    await ws.send(m.encode(m.AUTH_CLIENT_FINAL, message="c=biws,r=abc,p=AAAA"))
    reply = json.loads(await ws.recv())
    assert reply["type"] == m.AUTH_FAILED


async def test_no_secret_or_proof_in_any_log_line(
    agent: RunningAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ws = await raw_connect(agent)
    answer, final = await scram_login(ws, "homeassistant", agent.secret)
    assert answer["type"] == m.AUTH_SERVER_FINAL
    await ws.close()
    ws = await raw_connect(agent)
    await scram_login(ws, "homeassistant", agent.secret + "X")
    client = agent.client()
    await client.connect()
    await client.call("system", "refresh")
    proof = final.rsplit("p=", 1)[1]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "login: client homeassistant from 127.0.0.1" in text
    assert "login failed" in text
    for needle in (agent.secret, normalize_secret(agent.secret), proof, answer["message"]):
        assert needle not in text


async def test_agent_refuses_to_start_with_loose_secret_files(tmp_path: Path) -> None:
    from pi_agent.app import AgentApp, StartupError

    config_dir = tmp_path / "agent"
    make_config_dir(config_dir)
    for name in ("clients.json", "key.pem", "ca.key"):
        path = config_dir / name
        path.chmod(0o644)
        with pytest.raises(StartupError) as err:
            await AgentApp(config_dir, advertise=False).start()
        assert name in str(err.value)
        path.chmod(0o600)
    config_dir.chmod(0o755)
    with pytest.raises(StartupError):
        await AgentApp(config_dir, advertise=False).start()
    config_dir.chmod(0o700)
    async with running_agent(config_dir, prepared=True):
        pass
