"""Entities match the paired client's role, which the agent tells the session in its hello."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.button import SERVICE_PRESS
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from pi_secure_ws_testing.agent import RunningAgent
from pi_secure_ws_testing.ha import agent_id, entry_data
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.pi_secure_ws.const import DOMAIN

RESTART = "button.test_pi_restart_agent"
REFRESH = "button.test_pi_refresh_readings"


@pytest.fixture
def agent_clients() -> dict[str, str]:
    return {"homeassistant": "control", "admin": "admin", "watcher": "viewer"}


async def setup_as(hass: HomeAssistant, agent: RunningAgent, client_id: str) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN, title="Test Pi", unique_id=agent_id(agent), data=entry_data(agent, client_id)
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def our_entities(hass: HomeAssistant, entry: MockConfigEntry) -> set[str]:
    return {
        e.entity_id for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    }


async def test_control_gets_no_admin_buttons(hass: HomeAssistant, agent: RunningAgent) -> None:
    entry = await setup_as(hass, agent, "homeassistant")
    assert entry.runtime_data.hello.role == "control"
    entities = our_entities(hass, entry)
    assert RESTART not in entities
    assert "light.test_pi_porch" in entities
    assert "valve.test_pi_lawn" in entities
    assert "button.test_pi_stop_all_zones" in entities


async def test_admin_gets_restart(hass: HomeAssistant, agent: RunningAgent) -> None:
    entry = await setup_as(hass, agent, "admin")
    assert RESTART in our_entities(hass, entry)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_viewer_gets_only_what_it_can_use(hass: HomeAssistant, agent: RunningAgent) -> None:
    entry = await setup_as(hass, agent, "watcher")
    entities = our_entities(hass, entry)
    domains = {entity_id.split(".")[0] for entity_id in entities}
    assert domains <= {"binary_sensor", "button", "camera", "image", "sensor"}
    assert "camera.test_pi_camera" in entities
    assert "sensor.test_pi_memory_used" in entities
    # The one action a viewer may run is its only button.
    assert {e for e in entities if e.startswith("button.")} == {REFRESH}
    # Services are the integration's, registered for every entry; a viewer's is refused with a
    # translated message, before any request.
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "stop_all", {"config_entry_id": entry.entry_id}, blocking=True
        )
    assert err.value.translation_key == "role_cannot_command"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_refusal_is_a_translated_validation_error(
    hass: HomeAssistant,
    agent: RunningAgent,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refusal that still happens (the role lowered on the Pi while a session ran) reaches the
    user as a translated validation error, and nothing is logged with a traceback."""
    entry = await setup_as(hass, agent, "homeassistant")
    with pytest.raises(ServiceValidationError) as err:
        await entry.runtime_data.async_call("system", "restart_agent")
    assert err.value.translation_key == "forbidden"
    assert not agent.app.stopped.is_set()

    # Pressed from the frontend, over the websocket API: the same refusal, and no "Unexpected
    # exception" traceback in the log. The agent is made to want admin for stop_all, which is
    # what the session sees when its role was lowered on the Pi.
    sprinklers = agent.app.devices["sprinklers"]
    actions = sprinklers.actions()
    raised = {
        **actions,
        "stop_all": dataclasses.replace(
            actions["stop_all"], role=type(actions["stop_all"].role).ADMIN
        ),
    }
    client = await hass_ws_client(hass)
    caplog.set_level(logging.DEBUG)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sprinklers, "actions", lambda: raised)
        await client.send_json_auto_id(
            {
                "type": "call_service",
                "domain": BUTTON_DOMAIN,
                "service": SERVICE_PRESS,
                "target": {ATTR_ENTITY_ID: "button.test_pi_stop_all_zones"},
            }
        )
        answer = await client.receive_json()
    assert answer["success"] is False
    assert answer["error"]["translation_key"] == "forbidden"
    assert "needs the admin role" in answer["error"]["message"]
    assert "Unexpected exception" not in caplog.text
    # Home Assistant logs the message in one line; a traceback only at debug level.
    ours = [r for r in caplog.records if r.name.startswith("homeassistant.components.websocket")]
    assert any("needs the admin role" in r.getMessage() for r in ours)
    assert [r for r in ours if r.exc_info and r.levelno > logging.DEBUG] == []
