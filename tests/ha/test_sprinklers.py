"""Sprinkler zones as valves, their run times, end times, the rain delay and the services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.button import SERVICE_PRESS
from homeassistant.components.datetime import DOMAIN as DATETIME_DOMAIN
from homeassistant.components.datetime import SERVICE_SET_VALUE as SET_DATETIME
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.components.number import SERVICE_SET_VALUE
from homeassistant.components.valve import DOMAIN as VALVE_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_CLOSE_VALVE,
    SERVICE_OPEN_VALVE,
    STATE_UNKNOWN,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity import Entity
from homeassistant.util import dt as dt_util
from pi_secure_ws_testing.agent import RunningAgent
from pi_secure_ws_testing.waiting import wait_for
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_secure_ws.const import DOMAIN

LAWN = "valve.test_pi_lawn"
BEDS = "valve.test_pi_beds"
LAWN_RUN_TIME = "number.test_pi_lawn_run_time"
LAWN_ENDS = "sensor.test_pi_lawn_run_ends"
PUMP = "binary_sensor.test_pi_pump"
RAIN_DELAY = "datetime.test_pi_rain_delay_until"  # disabled by default, enabled here


@pytest.fixture(autouse=True)
def every_entity_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Entity, "entity_registry_enabled_default", property(lambda self: True))


def zone(agent: RunningAgent, zone_id: str) -> dict[str, object]:
    state = agent.app.devices["sprinklers"].state()
    return dict(state["zones"][zone_id])


async def valve(hass: HomeAssistant, service: str, entity_id: str) -> None:
    await hass.services.async_call(
        VALVE_DOMAIN, service, {ATTR_ENTITY_ID: entity_id}, blocking=True
    )


async def test_open_runs_zone_for_its_run_time(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    state = hass.states.get(LAWN)
    assert state.state == "closed"
    assert state.attributes["device_class"] == "water"
    assert hass.states.get(LAWN_RUN_TIME).state == "60"
    assert hass.states.get(LAWN_ENDS).state == STATE_UNKNOWN

    await hass.services.async_call(
        NUMBER_DOMAIN,
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: LAWN_RUN_TIME, "value": 30},
        blocking=True,
    )
    await valve(hass, SERVICE_OPEN_VALVE, LAWN)
    await wait_for(lambda: hass.states.get(LAWN).state == "open")
    assert zone(agent, "lawn")["open"] is True
    assert 0 < float(zone(agent, "lawn")["remaining"]) <= 30
    await wait_for(lambda: hass.states.get(PUMP).state == "on")
    ends = dt_util.parse_datetime(hass.states.get(LAWN_ENDS).state)
    assert ends is not None
    assert dt_util.utcnow() < ends <= dt_util.utcnow() + timedelta(seconds=31)

    await valve(hass, SERVICE_CLOSE_VALVE, LAWN)
    await wait_for(lambda: hass.states.get(LAWN).state == "closed")
    assert zone(agent, "lawn")["open"] is False

    # With `target:` and several zones: they run one after the other (the agent queues them).
    await hass.services.async_call(
        DOMAIN,
        "run_zone",
        {"duration": {"seconds": 5}},
        target={ATTR_ENTITY_ID: [LAWN, BEDS]},
        blocking=True,
    )
    await wait_for(lambda: hass.states.get(LAWN).state == "open")
    assert [q["zone"] for q in agent.app.devices["sprinklers"].state()["queue"]] == ["beds"]
    await hass.services.async_call(
        DOMAIN, "stop_all", {"config_entry_id": loaded_entry.entry_id}, blocking=True
    )
    assert hass.states.get(LAWN_ENDS).state == STATE_UNKNOWN


async def test_second_zone_waits_in_the_queue(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """max_concurrent = 1: the second zone shows as opening until the first is done."""
    await valve(hass, SERVICE_OPEN_VALVE, LAWN)
    await valve(hass, SERVICE_OPEN_VALVE, BEDS)
    await wait_for(lambda: hass.states.get(BEDS).state == "opening")
    await hass.services.async_call(
        BUTTON_DOMAIN,
        SERVICE_PRESS,
        {ATTR_ENTITY_ID: "button.test_pi_clear_zone_queue"},
        blocking=True,
    )
    await wait_for(lambda: hass.states.get(BEDS).state == "closed")
    await hass.services.async_call(
        BUTTON_DOMAIN,
        SERVICE_PRESS,
        {ATTR_ENTITY_ID: "button.test_pi_stop_all_zones"},
        blocking=True,
    )
    await wait_for(lambda: hass.states.get(LAWN).state == "closed")


async def test_run_zone_and_stop_all_services(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    await hass.services.async_call(
        DOMAIN, "run_zone", {ATTR_ENTITY_ID: LAWN, "duration": {"seconds": 5}}, blocking=True
    )
    await wait_for(lambda: hass.states.get(LAWN).state == "open")
    assert float(zone(agent, "lawn")["remaining"]) <= 5

    await hass.services.async_call(
        DOMAIN, "stop_all", {"config_entry_id": loaded_entry.entry_id}, blocking=True
    )
    await wait_for(lambda: hass.states.get(LAWN).state == "closed")
    assert zone(agent, "lawn")["open"] is False


async def test_service_errors(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "run_zone",
            {ATTR_ENTITY_ID: "light.test_pi_porch", "duration": 10},
            blocking=True,
        )
    assert err.value.translation_key == "not_a_zone"

    # Longer than the zone's maximum: the agent refuses and says why.
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "run_zone", {ATTR_ENTITY_ID: LAWN, "duration": 3000}, blocking=True
        )
    assert err.value.translation_key == "refused"

    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "stop_all", {"config_entry_id": "nope"}, blocking=True
        )
    assert err.value.translation_key == "unknown_config_entry"

    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "stop_all", {"config_entry_id": loaded_entry.entry_id}, blocking=True
        )
    assert err.value.translation_key == "entry_not_loaded"


async def test_rain_delay(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    assert hass.states.get(RAIN_DELAY).state == STATE_UNKNOWN
    until = (dt_util.utcnow() + timedelta(hours=6)).replace(microsecond=0)
    await hass.services.async_call(
        DATETIME_DOMAIN,
        SET_DATETIME,
        {ATTR_ENTITY_ID: RAIN_DELAY, "datetime": until},
        blocking=True,
    )
    await wait_for(lambda: hass.states.get(RAIN_DELAY).state != STATE_UNKNOWN)
    assert dt_util.parse_datetime(hass.states.get(RAIN_DELAY).state) == until
    assert agent.app.devices["sprinklers"].state()["rain_delay_until"] is not None

    # Zones do not run during a rain delay: the agent refuses, the user sees why.
    with pytest.raises(ServiceValidationError):
        await valve(hass, SERVICE_OPEN_VALVE, LAWN)

    await hass.services.async_call(
        BUTTON_DOMAIN,
        SERVICE_PRESS,
        {ATTR_ENTITY_ID: "button.test_pi_clear_rain_delay"},
        blocking=True,
    )
    await wait_for(lambda: hass.states.get(RAIN_DELAY).state == STATE_UNKNOWN)
    assert agent.app.devices["sprinklers"].state()["rain_delay_until"] is None


async def test_setting_a_past_moment_clears_the_rain_delay(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    until = (dt_util.utcnow() + timedelta(hours=6)).replace(microsecond=0)
    await hass.services.async_call(
        DATETIME_DOMAIN,
        SET_DATETIME,
        {ATTR_ENTITY_ID: RAIN_DELAY, "datetime": until},
        blocking=True,
    )
    await wait_for(lambda: hass.states.get(RAIN_DELAY).state != STATE_UNKNOWN)
    await hass.services.async_call(
        DATETIME_DOMAIN,
        SET_DATETIME,
        {ATTR_ENTITY_ID: RAIN_DELAY, "datetime": dt_util.utcnow() - timedelta(minutes=1)},
        blocking=True,
    )
    await wait_for(lambda: hass.states.get(RAIN_DELAY).state == STATE_UNKNOWN)
    assert agent.app.devices["sprinklers"].state()["rain_delay_until"] is None
