"""Lights: Home Assistant drives the agent's real (mock) pins, and agent changes show up."""

from __future__ import annotations

import pytest
from homeassistant.components.light import (
    ATTR_BRIGHTNESS,
    ATTR_EFFECT,
    ATTR_EFFECT_LIST,
    ATTR_TRANSITION,
)
from homeassistant.components.light import DOMAIN as LIGHT_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from pi_secure_ws_testing.agent import RunningAgent
from pi_secure_ws_testing.waiting import wait_for
from pytest_homeassistant_custom_component.common import MockConfigEntry

PORCH = "light.test_pi_porch"
SHED = "light.test_pi_shed"


def pin_value(agent: RunningAgent, light_id: str) -> float:
    """What the agent drives on the light's GPIO pin (0..1; PWM duty cycle when dimmable)."""
    return float(agent.app.devices[light_id]._output.value)  # type: ignore[attr-defined]


async def call(hass: HomeAssistant, service: str, entity_id: str, **data: object) -> None:
    await hass.services.async_call(
        LIGHT_DOMAIN, service, {ATTR_ENTITY_ID: entity_id, **data}, blocking=True
    )


async def test_dimmable_light(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    state = hass.states.get(PORCH)
    assert state.state == "off"
    assert state.attributes["supported_color_modes"] == ["brightness"]
    assert state.attributes[ATTR_EFFECT_LIST] == ["blink", "pulse"]

    await call(hass, SERVICE_TURN_ON, PORCH, **{ATTR_BRIGHTNESS: 128})
    await wait_for(lambda: hass.states.get(PORCH).state == "on")
    assert hass.states.get(PORCH).attributes[ATTR_BRIGHTNESS] == 128
    assert pin_value(agent, "porch") == pytest.approx(128 / 255, abs=0.01)

    await call(hass, SERVICE_TURN_OFF, PORCH, **{ATTR_TRANSITION: 0.1})
    await wait_for(lambda: pin_value(agent, "porch") == 0)
    assert hass.states.get(PORCH).state == "off"


async def test_on_off_light(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    state = hass.states.get(SHED)
    assert state.attributes["supported_color_modes"] == ["onoff"]
    await call(hass, SERVICE_TURN_ON, SHED)
    await wait_for(lambda: hass.states.get(SHED).state == "on")
    assert pin_value(agent, "shed") == 1
    await call(hass, SERVICE_TURN_OFF, SHED)
    await wait_for(lambda: hass.states.get(SHED).state == "off")
    assert pin_value(agent, "shed") == 0


async def test_effects(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    await call(hass, SERVICE_TURN_ON, PORCH, **{ATTR_EFFECT: "blink"})
    await wait_for(lambda: hass.states.get(PORCH).attributes.get(ATTR_EFFECT) == "blink")
    assert agent.app.devices["porch"].state()["effect"] == "blink"

    with pytest.raises(ServiceValidationError):
        await call(hass, SERVICE_TURN_ON, SHED, **{ATTR_EFFECT: "pulse"})

    # "off" is Home Assistant's "no effect": a plain turn on.
    await call(hass, SERVICE_TURN_ON, PORCH, **{ATTR_EFFECT: "off", ATTR_BRIGHTNESS: 50})
    await wait_for(lambda: hass.states.get(PORCH).attributes.get(ATTR_EFFECT) is None)
    assert agent.app.devices["porch"].state() == {"on": True, "effect": None, "brightness": 50}


async def test_agent_change_shows_in_home_assistant(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """Another client (say, the `pi-agent ctl` command) switches a light: the push arrives."""
    other = await agent.connected_client("admin")
    await other.call("porch", "turn_on", {"brightness": 200})
    await wait_for(lambda: hass.states.get(PORCH).state == "on")
    assert hass.states.get(PORCH).attributes[ATTR_BRIGHTNESS] == 200


async def test_a_light_sending_an_unreadable_state_is_unavailable_the_rest_goes_on(
    hass: HomeAssistant,
    agent: RunningAgent,
    loaded_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client decodes every push once; a state without its kind's shape makes only that
    device's entities unavailable (one warning), until the device sends a readable one again."""
    shed = agent.app.devices["shed"]
    readable = shed.state
    shed.state = lambda: {"on": "sort of", "effect": None}  # type: ignore[method-assign]
    shed.notify_state()
    await wait_for(lambda: hass.states.get(SHED).state == "unavailable")
    assert "device 'shed' of the agent is unusable" in caplog.text
    assert "light state.on: expected a boolean" in caplog.text

    # The other light is untouched and still obeys.
    await call(hass, SERVICE_TURN_ON, PORCH, **{ATTR_BRIGHTNESS: 60})
    await wait_for(lambda: hass.states.get(PORCH).state == "on")
    assert hass.states.get(SHED).state == "unavailable"

    shed.state = readable  # type: ignore[method-assign]
    shed.notify_state()
    await wait_for(lambda: hass.states.get(SHED).state == "off")
