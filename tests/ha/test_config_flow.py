"""Every path of the config, reauth, reconfigure and options flows, against a real agent."""

from __future__ import annotations

import base64
import json
import ssl
from ipaddress import ip_address

import pytest
from homeassistant.config_entries import SOURCE_USER, SOURCE_ZEROCONF, ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pi_secure_ws_testing.agent import RunningAgent, free_port
from pi_secure_ws_testing.ha import agent_id, entry_data, mock_entry, user_input, zeroconf_info
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_secure_ws.const import (
    CONF_CA_PEM,
    CONF_CAMERA_FPS,
    CONF_CLIENT_ID,
    CONF_FINGERPRINT,
    CONF_REQUEST_TIMEOUT,
    CONF_SECRET,
    DOMAIN,
)
from custom_components.pi_secure_ws.protocol.secret import generate_secret
from pi_agent import pki

# Config flow tests need only the system device; failed logins get blocked quickly.
FLOW_TOML = """
[blocklist]
threshold = 3
base_delay = 30.0
"""


@pytest.fixture
def agent_toml() -> str:
    return FLOW_TOML


async def start_user_flow(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return str(result["flow_id"])


async def test_user_trust_on_first_use(hass: HomeAssistant, agent: RunningAgent) -> None:
    """Without a pasted fingerprint the user sees and confirms the one the agent presented."""
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, user_input(agent))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "confirm"
    assert result["description_placeholders"] == {
        "name": "Test Pi",
        "host": agent.host,
        "fingerprint": agent.fingerprint,
        # Rows of eight bytes, so the confirmation never wraps inside a group.
        "fingerprint_rows": "\n".join(
            agent.fingerprint[i : i + 24].rstrip(":") for i in range(0, 96, 24)
        ),
    }

    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Test Pi"
    assert result["result"].unique_id == agent_id(agent)
    assert result["data"] == entry_data(agent)
    await hass.async_block_till_done()
    assert result["result"].state is ConfigEntryState.LOADED


async def test_user_pasted_fingerprint_skips_confirm(
    hass: HomeAssistant, agent: RunningAgent
) -> None:
    """A pasted fingerprint (any case, no colons) that matches needs no confirmation."""
    flow_id = await start_user_flow(hass)
    pasted = agent.fingerprint.replace(":", "").lower()
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(agent, **{CONF_FINGERPRINT: f"  {pasted} "})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_FINGERPRINT] == agent.fingerprint
    assert result["data"][CONF_CA_PEM] == pki.ca_pem(agent.config_dir)


async def test_user_pasted_fingerprint_must_match(hass: HomeAssistant, agent: RunningAgent) -> None:
    flow_id = await start_user_flow(hass)
    other = "AB:" * 31 + "AB"
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(agent, **{CONF_FINGERPRINT: other})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "certificate_mismatch"}
    assert result["description_placeholders"] == {"actual": agent.fingerprint}

    # The user can correct it in the same flow.
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(agent, **{CONF_FINGERPRINT: agent.fingerprint})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_user_malformed_fingerprint(hass: HomeAssistant, agent: RunningAgent) -> None:
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(agent, **{CONF_FINGERPRINT: "not-a-fingerprint"})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_FINGERPRINT: "invalid_fingerprint"}


async def test_user_wrong_secret_then_blocked(hass: HomeAssistant, agent: RunningAgent) -> None:
    """Wrong secrets are shown as invalid auth until the agent blocks us, then as blocked."""
    flow_id = await start_user_flow(hass)
    wrong = user_input(agent, **{CONF_SECRET: generate_secret()})
    for _ in range(3):
        result = await hass.config_entries.flow.async_configure(flow_id, wrong)
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"base": "invalid_auth"}
        # Everything typed is put back into the form.
        suggested = {
            str(key): (key.description or {}).get("suggested_value")
            for key in result["data_schema"].schema
        }
        assert suggested[CONF_SECRET] == wrong[CONF_SECRET]
        assert suggested[CONF_HOST] == agent.host

    result = await hass.config_entries.flow.async_configure(flow_id, user_input(agent))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "blocked"}
    retry_after = int(result["description_placeholders"]["retry_after"])
    assert retry_after >= 1  # the agent's back-off, rounded up for the form
    assert retry_after <= 31


async def test_user_unknown_client_id(hass: HomeAssistant, agent: RunningAgent) -> None:
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(agent, **{CONF_CLIENT_ID: "nobody"})
    )
    assert result["errors"] == {"base": "invalid_auth"}


async def test_user_cannot_connect(hass: HomeAssistant, agent: RunningAgent) -> None:
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(agent, **{CONF_PORT: free_port()})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}


async def test_user_malformed_host(hass: HomeAssistant, agent: RunningAgent) -> None:
    """A host no URL can hold is a connection error on the form, not a traceback."""
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(agent, **{CONF_HOST: "[::1"})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}


async def test_user_unexpected_error(
    hass: HomeAssistant, agent: RunningAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Something no typed error covers is 'unknown'. The fault is injected below our code, in
    the standard library's TLS, the way a broken OpenSSL would fail."""

    def broken_tls(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated OpenSSL fault")

    flow_id = await start_user_flow(hass)
    monkeypatch.setattr(ssl, "SSLContext", broken_tls)
    result = await hass.config_entries.flow.async_configure(flow_id, user_input(agent))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}


async def test_user_server_cannot_prove_itself(hass: HomeAssistant, agent: RunningAgent) -> None:
    """An agent that checks our proof but holds the wrong server key is not the paired agent."""
    clients_file = agent.config_dir / "clients.json"
    document = json.loads(clients_file.read_text())
    document["clients"]["homeassistant"]["server_key"] = base64.b64encode(bytes(32)).decode()
    clients_file.write_text(json.dumps(document))
    agent.app.reload_clients()

    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, user_input(agent))
    assert result["errors"] == {"base": "server_auth_failed"}


async def test_user_already_configured(hass: HomeAssistant, agent: RunningAgent) -> None:
    mock_entry(agent).add_to_hass(hass)
    flow_id = await start_user_flow(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, user_input(agent))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_zeroconf_asks_secret_then_fingerprint(
    hass: HomeAssistant, agent: RunningAgent
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=zeroconf_info(agent, agent_id=agent_id(agent)),
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_confirm"
    assert result["description_placeholders"] == {"name": "Test Pi", "host": agent.host}
    assert list(result["data_schema"].schema) == [CONF_SECRET]
    flow_id = result["flow_id"]

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_SECRET: generate_secret()}
    )
    assert result["step_id"] == "zeroconf_confirm"
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_SECRET: agent.secret})
    assert result["step_id"] == "confirm"
    assert result["description_placeholders"]["fingerprint"] == agent.fingerprint

    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == entry_data(agent)


async def test_zeroconf_without_agent_id(hass: HomeAssistant, agent: RunningAgent) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(agent)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "invalid_discovery_info"


async def test_zeroconf_txt_names_another_agent(hass: HomeAssistant, agent: RunningAgent) -> None:
    """What the TXT record claims does not decide: the agent that logs in does."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(agent, agent_id="claimed")
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SECRET: agent.secret}
    )
    assert result["step_id"] == "confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == agent_id(agent)


async def test_zeroconf_txt_names_another_configured_agent(
    hass: HomeAssistant, agent: RunningAgent
) -> None:
    mock_entry(agent).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(agent, agent_id="claimed")
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SECRET: agent.secret}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_zeroconf_updates_host_of_disconnected_entry(
    hass: HomeAssistant, agent: RunningAgent
) -> None:
    """The Pi moved (new DHCP address): a not-connected entry learns the new host."""
    entry = mock_entry(agent, {CONF_HOST: "192.0.2.1", CONF_PORT: 1})
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=zeroconf_info(agent, agent_id=agent_id(agent)),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_HOST] == agent.host
    assert entry.data[CONF_PORT] == agent.port


async def test_zeroconf_leaves_connected_entry_alone(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """An mDNS answer (anyone can send one) does not move an entry with a working session."""
    info = zeroconf_info(agent, agent_id=agent_id(agent))
    info.ip_address = ip_address("192.0.2.7")
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert loaded_entry.data[CONF_HOST] == agent.host


async def test_reauth(hass: HomeAssistant, agent: RunningAgent) -> None:
    entry = mock_entry(agent, {CONF_SECRET: "OLD-SECRET"})
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SECRET: generate_secret(), CONF_CLIENT_ID: "homeassistant"}
    )
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SECRET: agent.secret, CONF_CLIENT_ID: "homeassistant"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_SECRET] == agent.secret
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_reauth_with_another_agent(hass: HomeAssistant, agent: RunningAgent) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id="another-pi", data=entry_data(agent))
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SECRET: agent.secret, CONF_CLIENT_ID: "homeassistant"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_device"


async def test_reconfigure_host_and_port(hass: HomeAssistant, agent: RunningAgent) -> None:
    entry = mock_entry(agent, {CONF_HOST: "127.0.0.1", CONF_PORT: free_port()})
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"

    # An address, not "localhost": the port is known free on 127.0.0.1 only, and localhost may
    # resolve to ::1 first (seen with Home Assistant 2026.10.4).
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: "127.0.0.1", CONF_PORT: free_port()}
    )
    assert result["errors"] == {"base": "cannot_connect"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: agent.host, CONF_PORT: agent.port}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_HOST] == agent.host
    assert entry.data[CONF_PORT] == agent.port
    assert entry.data[CONF_FINGERPRINT] == agent.fingerprint


async def test_reconfigure_repins_a_new_certificate(
    hass: HomeAssistant, agent: RunningAgent
) -> None:
    """After the Pi's certificates were regenerated, pasting the new fingerprint re-pairs."""
    entry = mock_entry(agent)
    entry.add_to_hass(hass)
    port = agent.port
    await agent.app.stop()
    new_fingerprint = pki.write_pki(agent.config_dir, "test", ["localhost"], ["127.0.0.1"])
    from pi_secure_ws_testing.agent import running_agent

    async with running_agent(agent.config_dir, prepared=True, port=port):
        result = await entry.start_reconfigure_flow(hass)
        form = {CONF_HOST: agent.host, CONF_PORT: port}
        # Without a new fingerprint the pinned one no longer matches.
        result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
        assert result["errors"] == {"base": "certificate_mismatch"}

        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**form, CONF_FINGERPRINT: "12"}
        )
        assert result["errors"] == {CONF_FINGERPRINT: "invalid_fingerprint"}

        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**form, CONF_FINGERPRINT: new_fingerprint}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reconfigure_successful"
        assert entry.data[CONF_FINGERPRINT] == new_fingerprint
        assert entry.data[CONF_CA_PEM] == pki.ca_pem(agent.config_dir)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_to_another_agent(hass: HomeAssistant, agent: RunningAgent) -> None:
    entry = MockConfigEntry(domain=DOMAIN, unique_id="another-pi", data=entry_data(agent))
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: agent.host, CONF_PORT: agent.port}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_device"


async def test_options(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_CAMERA_FPS: 3, CONF_REQUEST_TIMEOUT: 20}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options == {CONF_CAMERA_FPS: 3, CONF_REQUEST_TIMEOUT: 20.0}
    # Options are read when used: the entry keeps its session (no reload).
    assert loaded_entry.state is ConfigEntryState.LOADED
