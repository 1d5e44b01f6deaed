"""After login: message handling, roles, rate limits, pushes and credential changes."""

from __future__ import annotations

import asyncio
import json

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.client import AgentClient, Disconnected, StateChanged
from pi_secure_ws_protocol.const import MECHANISM, SUBPROTOCOL, CloseCode
from pi_secure_ws_protocol.devices import LightState
from pi_secure_ws_protocol.errors import CommandError, InvalidAuth, RequestTimeout
from pi_secure_ws_protocol.pinning import tls_server_end_point
from pi_secure_ws_protocol.scram import ServerExchange, make_verifier
from pi_secure_ws_testing.agent import AgentFactory, RunningAgent
from pi_secure_ws_testing.agent_toml import PORCH_LIGHT
from pi_secure_ws_testing.wire import raw_exchange
from websockets.asyncio.server import ServerConnection, serve

from pi_agent import pki
from pi_agent.credentials import CredentialStore

ROLES = {"homeassistant": "control", "wall_panel": "viewer", "owner": "admin"}
HELLO_AGENT = {"id": "fake", "name": "Fake", "version": "0"}
HELLO_SESSION = {"client_id": "homeassistant", "role": "control"}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", m.ERR_INVALID_MESSAGE),
        ("[1, 2]", m.ERR_INVALID_MESSAGE),
        ('{"v": 2, "type": "ping", "id": 1}', m.ERR_INVALID_MESSAGE),
        ('{"v": 1, "type": "launch_missiles", "id": 7}', m.ERR_UNKNOWN_TYPE),
        ('{"v": 1, "type": "call", "id": 8}', m.ERR_INVALID_MESSAGE),
        (
            '{"v": 1, "type": "call", "id": 9, "device": "system", "action": "x", "evil": 1}',
            m.ERR_INVALID_MESSAGE,
        ),
        ('{"v": 1, "type": "ping", "id": NaN}', m.ERR_INVALID_MESSAGE),
        ('{"v": 1, "type": "ping", "id": true}', m.ERR_INVALID_MESSAGE),
        ("[" * 3000 + "]" * 3000, m.ERR_INVALID_MESSAGE),
    ],
)
async def test_bad_messages_get_an_error_and_the_session_goes_on(
    agent: RunningAgent, frame: str, code: str
) -> None:
    error = await raw_exchange(agent, frame)
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    client = agent.clients[-1]
    await client.ping()
    assert client.connected


async def test_errors_carry_the_request_id_and_name_the_problem(agent: RunningAgent) -> None:
    client = await agent.connected_client()
    with pytest.raises(CommandError) as err:
        await client.call("toaster", "on")
    assert err.value.code == m.ERR_UNKNOWN_DEVICE
    with pytest.raises(CommandError) as err:
        await client.call("system", "self_destruct")
    assert err.value.code == m.ERR_UNKNOWN_ACTION
    assert "refresh" in err.value.message
    states = await client.get_states()
    assert "system" in states


async def test_roles_are_enforced_before_hardware(agent_factory: AgentFactory) -> None:
    async with agent_factory(PORCH_LIGHT, clients=ROLES) as agent:
        light = agent.app.devices["porch"]
        pin = light._output.pin  # type: ignore[attr-defined]
        viewer = await agent.connected_client("wall_panel")
        porch = (await viewer.get_states())["porch"]
        assert isinstance(porch, LightState)
        assert porch.on is False
        with pytest.raises(CommandError) as err:
            await viewer.call("porch", "turn_on", {"brightness": 255})
        assert err.value.code == m.ERR_FORBIDDEN
        assert "control" in err.value.message
        assert pin.state == 0

        control = await agent.connected_client("homeassistant")
        with pytest.raises(CommandError) as err:
            await control.call("system", "restart_agent")
        assert err.value.code == m.ERR_FORBIDDEN
        assert agent.app.exit_code == 0 and not agent.app.stopped.is_set()
        await control.call("porch", "turn_on", {"brightness": 255})
        assert pin.state == pytest.approx(1.0)

        admin = await agent.connected_client("owner")
        await admin.call("system", "restart_agent")
        await asyncio.wait_for(agent.app.stopped.wait(), 2)
        assert agent.app.exit_code == 75


async def test_changes_are_pushed_to_every_client(agent_factory: AgentFactory) -> None:
    async with agent_factory(PORCH_LIGHT, clients=ROLES) as agent:
        watcher = await agent.connected_client("wall_panel")
        seen: asyncio.Queue[StateChanged] = asyncio.Queue()
        watcher.add_listener(lambda e: seen.put_nowait(e) if isinstance(e, StateChanged) else None)
        control = await agent.connected_client("homeassistant")
        await control.call("porch", "turn_on", {"brightness": 128})
        while True:
            event = await asyncio.wait_for(seen.get(), 2)
            if event.device == "porch" and isinstance(event.state, LightState) and event.state.on:
                break
        porch = watcher.states["porch"]
        assert isinstance(porch, LightState)
        assert porch.brightness == 128


async def test_message_flood_is_rate_limited(agent_factory: AgentFactory) -> None:
    async with agent_factory("[limits]\nmessages_per_second = 20\n") as agent:
        client = await agent.connected_client()
        results = await asyncio.gather(*(client.ping() for _ in range(120)), return_exceptions=True)
        limited = [r for r in results if isinstance(r, Exception)]
        assert limited, "a burst of 120 messages went through a limit of 20/s"
        # Refused at once with the request's id, not left to time out.
        assert all(isinstance(r, CommandError) and r.code == m.ERR_RATE_LIMITED for r in limited)
        assert len(results) - len(limited) >= 20
        await asyncio.sleep(0.3)
        await client.ping()  # the session survives a burst


async def test_rotation_and_removal_close_only_the_affected_sessions(
    agent_factory: AgentFactory,
) -> None:
    async with agent_factory(clients=ROLES) as agent:
        ha = await agent.connected_client("homeassistant")
        panel = await agent.connected_client("wall_panel")
        closed: list[Disconnected] = []
        ha.add_listener(lambda e: closed.append(e) if isinstance(e, Disconnected) else None)
        old_secret = agent.secret

        store = CredentialStore.load(agent.config_dir / "clients.json")
        new_secret = store.rotate("homeassistant")
        store.save()
        assert agent.app.reload_clients() == 1
        await asyncio.sleep(0.3)
        assert not ha.connected
        assert isinstance(closed[0].error, InvalidAuth)
        assert panel.connected
        await panel.ping()
        with pytest.raises(InvalidAuth):
            await agent.client("homeassistant", secret=old_secret).connect()
        await agent.client("homeassistant", secret=new_secret).connect()

        store = CredentialStore.load(agent.config_dir / "clients.json")
        store.remove("wall_panel")
        store.save()
        agent.app.reload_clients()
        await asyncio.sleep(0.3)
        assert not panel.connected
        ws_code = None
        assert ws_code is None  # the close code is checked through the client's error above
        with pytest.raises(InvalidAuth):
            await agent.client("wall_panel").connect()


async def test_close_code_for_revoked_credentials(agent_factory: AgentFactory) -> None:
    async with agent_factory(clients=ROLES) as agent:
        client = await agent.connected_client("wall_panel")
        ws = client._ws
        assert ws is not None
        store = CredentialStore.load(agent.config_dir / "clients.json")
        store.rotate("wall_panel")
        store.save()
        agent.app.reload_clients()
        await asyncio.sleep(0.3)
        assert ws.close_code == CloseCode.CREDENTIALS_REVOKED


async def test_client_reconnects_and_resynchronises(agent: RunningAgent) -> None:
    client = agent.client(min_backoff=0.05, max_backoff=0.2)
    await client.connect()
    runner = asyncio.create_task(client.run())
    first = client._ws
    assert first is not None
    first.transport.abort()  # the network drops
    for _ in range(100):
        await asyncio.sleep(0.05)
        if client.connected and client._ws is not first:
            break
    assert client.connected and client._ws is not first
    assert "system" in client.states
    await client.ping()
    await client.close()
    await asyncio.wait_for(runner, 2)
    assert client.stats["connects"] == 2


async def test_client_returns_quickly_after_an_agent_restart(agent_factory: AgentFactory) -> None:
    """A 1001 "going away" close means a restart: retry at once, not after the long back-off."""
    from pi_secure_ws_testing.agent import running_agent

    async with agent_factory() as agent:
        config_dir, port, secrets = agent.config_dir, agent.port, dict(agent.secrets)
        # Not agent.client(): the harness would close that one itself when the agent stops.
        client = AgentClient(
            "127.0.0.1",
            port,
            client_id="homeassistant",
            secret=agent.secret,
            fingerprint=agent.fingerprint,
            min_backoff=30.0,
        )
        await client.connect()
        runner = asyncio.create_task(client.run())
    # The agent has stopped; the client saw 1001 and keeps retrying every ~0.25 s.
    await asyncio.sleep(0.6)
    assert not client.connected
    assert client._last_close_code == CloseCode.GOING_AWAY
    async with running_agent(config_dir, prepared=True, port=port) as again:
        again.secrets = secrets
        for _ in range(60):
            if client.connected:
                break
            await asyncio.sleep(0.05)
        assert client.connected  # well before the 30 s back-off
        await client.ping()
        await client.close()
        await asyncio.wait_for(runner, 2)


async def test_an_unanswered_request_times_out_and_the_session_goes_on(
    agent: RunningAgent,
) -> None:
    """An agent that logs the client in properly but leaves one request unanswered."""
    cbind = tls_server_end_point(pki.load_leaf_cert(agent.config_dir).public_bytes(Encoding.DER))
    verifier = make_verifier(agent.secret)

    async def slow_agent(ws: ServerConnection) -> None:
        await ws.send(
            m.encode(m.AUTH_START, mechanisms=[MECHANISM], ca=pki.ca_pem(agent.config_dir))
        )
        exchange = ServerExchange(cbind, lambda _id: (verifier, True))
        first = json.loads(await ws.recv())
        await ws.send(
            m.encode(m.AUTH_SERVER_FIRST, message=exchange.server_first(first["message"]))
        )
        final = json.loads(await ws.recv())
        server_final = exchange.server_final(final["message"])
        await ws.send(m.encode(m.AUTH_SERVER_FINAL, message=server_final))
        await ws.send(
            m.encode(m.HELLO, agent=HELLO_AGENT, session=HELLO_SESSION, devices=[], states={})
        )
        json.loads(await ws.recv())  # the first request: no answer
        async for text in ws:
            await ws.send(m.encode(m.RESULT, id=json.loads(text)["id"], data={}))

    async with serve(
        slow_agent,
        "127.0.0.1",
        0,
        ssl=pki.server_ssl_context(agent.config_dir),
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
    ) as server:
        client = agent.client(port=server.sockets[0].getsockname()[1], request_timeout=0.2)
        await client.connect()
        with pytest.raises(RequestTimeout, match="no answer to ping"):
            await client.ping()
        assert client._pending == {}
        assert client.connected
        await client.ping()  # the next one is answered
        await client.close()
