"""What the connection makes of a hello's odd values and of errors that are not the agent's 'no'."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from pi_secure_ws_testing.agent import RunningAgent
from pytest_homeassistant_custom_component.common import MockConfigEntry

# The integration's own copy of the protocol (the agent's is a second import of the same files).
from custom_components.pi_secure_ws.protocol.const import Role
from custom_components.pi_secure_ws.protocol.errors import (
    ErrorKind,
    ErrorMeaning,
    PiSecureWsError,
    Recovery,
    RequestTimeout,
)

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / "pi_secure_ws"


async def test_an_unknown_role_may_do_least(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    connection = loaded_entry.runtime_data
    assert connection.role is Role.CONTROL  # what the agent told this session
    connection.client.hello = dataclasses.replace(connection.hello, role="superuser")
    assert connection.role is Role.VIEWER


async def test_the_pi_model_names_the_device(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    connection = loaded_entry.runtime_data
    assert "model" not in connection.device_info  # the mock agent has no device tree
    connection.client.hello = dataclasses.replace(
        connection.hello, model="Raspberry Pi 5 Model B Rev 1.0"
    )
    assert connection.device_info["model"] == "Raspberry Pi 5 Model B Rev 1.0"


async def test_a_timeout_or_a_lost_session_is_not_the_users_to_fix(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    connection = loaded_entry.runtime_data
    timeout = connection._user_error("porch", "turn_on", RequestTimeout("no answer in 10 s"))
    lost = connection._user_error("porch", "turn_on", PiSecureWsError("connection closed"))
    for error, key in ((timeout, "timeout"), (lost, "not_connected")):
        assert type(error) is HomeAssistantError  # not a ServiceValidationError
        assert not isinstance(error, ServiceValidationError)
        assert error.translation_key == key
        assert error.translation_placeholders["device"] == "porch"


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_meaning_of_an_error_has_a_text(kind: ErrorKind) -> None:
    """The keys come from classify(), not from literals a static check could read: each one a
    form, a failed setup or a failed request can show has its text."""
    en = json.loads((INTEGRATION / "translations" / "en.json").read_text(encoding="utf-8"))
    meaning = ErrorMeaning(kind, Recovery.NONE, "a sentence", "a detail")
    assert meaning.request_key in en["exceptions"]
    assert meaning.connect_key in en["config"]["error"]
    if kind is not ErrorKind.UNKNOWN:  # a setup reports only the protocol's own errors
        assert meaning.connect_key in en["exceptions"]


async def test_the_device_objects_are_the_agents_devices(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """One object per reported device, in the agent's order; a valve's unique id finds its zone,
    any other entity's finds none."""
    connection = loaded_entry.runtime_data
    devices = connection.devices
    assert list(devices) == list(connection.hello.devices)
    assert len(devices) == len(connection.hello.devices)
    assert devices["porch"].kind == "light"
    sprinklers = devices["sprinklers"]
    lawn = sprinklers.zones["lawn"]
    valve = er.async_get(hass).async_get("valve.test_pi_lawn")
    assert valve is not None
    assert connection.zone_of_valve(valve.unique_id) == (sprinklers, lawn)
    assert connection.zone_of_valve(devices["porch"].unique_id("light")) is None


async def test_a_stream_the_agent_cannot_start_is_a_translated_error(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    connection = loaded_entry.runtime_data
    with pytest.raises(HomeAssistantError) as err:
        await connection.async_stream("camera", "no_such_action")
    assert err.value.translation_key == "command_failed"
    assert err.value.translation_placeholders["action"] == "no_such_action"
