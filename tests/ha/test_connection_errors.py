"""What the connection makes of a hello's odd values and of errors that are not the agent's 'no'."""

from __future__ import annotations

import dataclasses

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pi_secure_ws_testing.agent import RunningAgent
from pytest_homeassistant_custom_component.common import MockConfigEntry

# The integration's own copy of the protocol (the agent's is a second import of the same files).
from custom_components.pi_secure_ws.protocol.const import Role
from custom_components.pi_secure_ws.protocol.errors import PiSecureWsError, RequestTimeout


async def test_an_unknown_role_may_do_least(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    connection = loaded_entry.runtime_data
    assert connection.role is Role.CONTROL  # what the agent told this session
    connection.hello = dataclasses.replace(connection.hello, role="superuser")
    assert connection.role is Role.VIEWER


async def test_the_pi_model_names_the_device(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    connection = loaded_entry.runtime_data
    assert "model" not in connection.device_info  # the mock agent has no device tree
    connection.hello = dataclasses.replace(connection.hello, model="Raspberry Pi 5 Model B Rev 1.0")
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
