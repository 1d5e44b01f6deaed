"""Setup, unload, reload, losing and regaining the agent, rotated secrets, changed certificates."""

from __future__ import annotations

import socket

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_PORT, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from pi_secure_ws_testing.agent import RunningAgent, running_agent
from pi_secure_ws_testing.ha import agent_id, entry_data, mock_entry
from pi_secure_ws_testing.waiting import wait_for
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_secure_ws.const import CONF_SECRET, DOMAIN
from pi_agent import pki
from pi_agent.credentials import CredentialStore

LIGHT = "light.test_pi_porch"


def reauth_flows(hass: HomeAssistant) -> list[object]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


def rotate_secret(agent: RunningAgent, client_id: str = "homeassistant") -> str:
    """What `pi-agent client rotate` does: a new secret, and the running agent reloads clients."""
    store = CredentialStore.load(agent.config_dir / "clients.json")
    secret = store.rotate(client_id)
    store.save()
    agent.app.reload_clients()
    return secret


async def test_setup_creates_one_device(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    # The entry's devices, not async_get_device(identifiers=...): Home Assistant 2026 refuses that
    # call (identifiers are no longer unique across entries); its replacements are not in 2025.4.
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), loaded_entry.entry_id)
    assert len(devices) == 1
    device = devices[0]
    assert (DOMAIN, agent_id(agent)) in device.identifiers
    assert device.name == "Test Pi"
    assert device.sw_version
    assert hass.states.get(LIGHT) is not None


async def test_unload_closes_the_session_and_reload_works(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    connection = loaded_entry.runtime_data
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    assert loaded_entry.state is ConfigEntryState.NOT_LOADED
    assert not connection.client.connected
    await wait_for(lambda: not agent.app.server or len(agent.app.server.sessions) == 0)

    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert hass.states.get(LIGHT).state == "off"


async def test_agent_down_at_setup_retries(hass: HomeAssistant, agent: RunningAgent) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=agent_id(agent), data={**entry_data(agent), CONF_PORT: port}
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert not reauth_flows(hass)


async def test_wrong_secret_at_setup_starts_reauth(
    hass: HomeAssistant, agent: RunningAgent
) -> None:
    entry = mock_entry(agent, {CONF_SECRET: "AAAA-BBBB"})
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert len(reauth_flows(hass)) == 1


async def test_lost_agent_goes_unavailable_and_comes_back(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    assert hass.states.get(LIGHT).state == "off"
    port = agent.port
    await agent.app.stop()
    await wait_for(lambda: hass.states.get(LIGHT).state == STATE_UNAVAILABLE)
    assert not loaded_entry.runtime_data.connected

    async with running_agent(agent.config_dir, prepared=True, port=port) as again:
        # Changed while Home Assistant was away: the resync on reconnect brings it in.
        await (
            again.app.devices["porch"]
            .actions()["turn_on"]
            .handler({"brightness": 100}, _admin_call())
        )
        await wait_for(lambda: hass.states.get(LIGHT).state == "on")
        assert hass.states.get(LIGHT).attributes["brightness"] == 100
        # A network error never asks the user for the secret.
        assert not reauth_flows(hass)
        stats = loaded_entry.runtime_data.stats
        assert stats.disconnects >= 1
        assert stats.connects >= 2
        assert await hass.config_entries.async_unload(loaded_entry.entry_id)


async def test_rotated_secret_starts_reauth(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    new_secret = rotate_secret(agent)
    await wait_for(lambda: len(reauth_flows(hass)) == 1)
    assert hass.states.get(LIGHT).state == STATE_UNAVAILABLE

    flow = reauth_flows(hass)[0]
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_SECRET: new_secret, "client_id": "homeassistant"}
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED
    await wait_for(lambda: hass.states.get(LIGHT).state == "off")


async def test_changed_certificate_raises_repair_issue(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """Another certificate at the agent's address: no login, an issue, and no reauth prompt."""
    port = agent.port
    await agent.app.stop()
    pki.write_pki(agent.config_dir, "test", ["localhost"], ["127.0.0.1"])
    issue_id = f"certificate_mismatch_{loaded_entry.entry_id}"
    issues = ir.async_get(hass)
    async with running_agent(agent.config_dir, prepared=True, port=port) as impostor:
        await wait_for(lambda: issues.async_get_issue(DOMAIN, issue_id) is not None)
        issue = issues.async_get_issue(DOMAIN, issue_id)
        assert issue is not None
        assert issue.severity is ir.IssueSeverity.ERROR
        assert issue.translation_key == "certificate_mismatch"
        assert issue.translation_placeholders["expected"] == agent.fingerprint
        assert hass.states.get(LIGHT).state == STATE_UNAVAILABLE
        assert not reauth_flows(hass)
        assert impostor.app.server is not None
        assert len(impostor.app.server.sessions) == 0

        # Reloading does not connect either: setup fails and the issue stays.
        await hass.config_entries.async_reload(loaded_entry.entry_id)
        assert loaded_entry.state is ConfigEntryState.SETUP_ERROR
        assert issues.async_get_issue(DOMAIN, issue_id) is not None


async def test_other_devices_after_reconnect_reload_the_entry(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """agent.toml changed while away (a light removed): the entities are built again."""
    assert hass.states.get("light.test_pi_shed") is not None
    port = agent.port
    await agent.app.stop()
    toml = (agent.config_dir / "agent.toml").read_text()
    without_shed = toml.replace('[[light]]\nid = "shed"\nname = "Shed"\npin = 27\n', "")
    assert without_shed != toml
    (agent.config_dir / "agent.toml").write_text(without_shed)
    async with running_agent(agent.config_dir, prepared=True, port=port):
        await wait_for(lambda: hass.states.get(LIGHT).state == "off")
        await hass.async_block_till_done()
        assert loaded_entry.state is ConfigEntryState.LOADED
        shed = hass.states.get("light.test_pi_shed")
        assert shed is None or shed.attributes.get("restored") is True
        assert await hass.config_entries.async_unload(loaded_entry.entry_id)


async def test_service_call_while_disconnected(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    await agent.app.stop()
    await wait_for(lambda: hass.states.get(LIGHT).state == STATE_UNAVAILABLE)
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN, "stop_all", {"config_entry_id": loaded_entry.entry_id}, blocking=True
        )
    assert err.value.translation_key == "not_connected"


def _admin_call() -> object:
    from pi_secure_ws_protocol.const import Role

    from pi_agent.devices.base import CallContext

    return CallContext(client_id="test", role=Role.ADMIN, source="test")
