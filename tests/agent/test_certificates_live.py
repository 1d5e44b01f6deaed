"""Certificates on a running agent: leaf renewal without re-pairing, and the mDNS record."""

from __future__ import annotations

from agent_harness import RunningAgent
from cryptography import x509
from pi_secure_ws_protocol.const import ZEROCONF_TYPE

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
