"""Certificates on a running agent: leaf renewal without re-pairing, TLS session resumption and
the mDNS record."""

from __future__ import annotations

import asyncio
import ssl

from cryptography import x509
from pi_secure_ws_protocol.client import AgentClient
from pi_secure_ws_protocol.const import ZEROCONF_TYPE
from pi_secure_ws_testing.agent import RunningAgent

from pi_agent import pki
from pi_agent.discovery import service_info


async def test_leaf_renewal_keeps_pairings_and_sessions(agent: RunningAgent) -> None:
    old_leaf = pki.load_leaf_cert(agent.config_dir)
    paired = await agent.connected_client()
    ca_pem = paired.ca_pem
    assert agent.app.renew_certificate(force=True)
    new_leaf = pki.load_leaf_cert(agent.config_dir)
    assert new_leaf.serial_number != old_leaf.serial_number
    await paired.ping()  # the open session goes on

    # A client paired before, with the same pinned CA, logs in to the renewed certificate: the
    # new leaf is served and the channel binding follows it.
    again = agent.client(ca_pem=ca_pem)
    await again.connect()
    ssl_object = again._ws.transport.get_extra_info("ssl_object")  # type: ignore[union-attr]
    served = x509.load_der_x509_certificate(ssl_object.getpeercert(binary_form=True))
    assert served.serial_number == new_leaf.serial_number
    assert pki.ca_fingerprint(agent.config_dir) == agent.fingerprint


async def test_mdns_record_names_the_agent_and_nothing_secret(agent: RunningAgent) -> None:
    config = agent.app.config
    assert config is not None
    info = service_info(config, agent.port)
    assert info.type == ZEROCONF_TYPE
    assert info.port == agent.port
    properties = {k.decode(): v.decode() for k, v in info.properties.items() if v is not None}
    assert properties["agent_id"] == config.agent_id
    assert set(properties) == {"agent_id", "version", "name"}
    assert agent.secret not in str(properties)


def ssl_object_of(client: AgentClient) -> ssl.SSLObject:
    assert client._ws is not None
    ssl_object: ssl.SSLObject = client._ws.transport.get_extra_info("ssl_object")
    return ssl_object


async def reconnect(client: AgentClient) -> bool:
    """Connect, log in and close; whether the TLS session was resumed."""
    await client.connect()
    resumed = ssl_object_of(client).session_reused
    await client.close()
    await asyncio.sleep(0)  # the session is kept just after the login
    return resumed


async def test_a_reconnect_resumes_the_tls_session_verified_against_the_pin(
    agent: RunningAgent,
) -> None:
    client = agent.client(ca_pem=pki.ca_pem(agent.config_dir))
    assert [await reconnect(client) for _ in range(3)] == [False, True, True]
    assert agent.app.server is not None
    assert agent.app.server.stats["logins"] == 3
    assert agent.app.server.stats["login_failures"] == 0


async def test_a_session_from_a_handshake_tls_did_not_verify_is_never_resumed(
    agent: RunningAgent,
) -> None:
    """Paired by fingerprint only, the first connect cannot verify in TLS (the CA arrives in
    auth_start); its session is dropped, and only the next, verified one is resumed."""
    client = agent.client()
    await client.connect()
    first_context = ssl_object_of(client).context
    assert first_context.verify_mode == ssl.CERT_NONE
    await client.close()
    await asyncio.sleep(0)
    assert getattr(first_context, "tls_session", None) is None
    assert [await reconnect(client) for _ in range(2)] == [False, True]


async def test_after_a_leaf_renewal_an_old_session_is_not_resumed(agent: RunningAgent) -> None:
    """A session made with the old leaf would carry its channel binding: resuming it would fail
    the login and count against the source. The agent's new ticket key refuses it instead."""
    client = agent.client(ca_pem=pki.ca_pem(agent.config_dir))
    assert [await reconnect(client) for _ in range(2)] == [False, True]
    assert agent.app.renew_certificate(force=True)
    new_leaf = pki.load_leaf_cert(agent.config_dir)
    await client.connect()
    ssl_object = ssl_object_of(client)
    assert not ssl_object.session_reused
    served = x509.load_der_x509_certificate(ssl_object.getpeercert(binary_form=True))
    assert served.serial_number == new_leaf.serial_number
    await client.close()
    assert await reconnect(client)  # and the new session resumes in turn
    assert agent.app.server is not None
    assert agent.app.server.stats["login_failures"] == 0
