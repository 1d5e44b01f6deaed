"""run_zone takes a target, as Home Assistant's own actions do: zones, or devices and areas."""

from __future__ import annotations

import pytest
from homeassistant.const import (
    ATTR_AREA_ID,
    ATTR_DEVICE_ID,
    ATTR_ENTITY_ID,
    ATTR_FLOOR_ID,
    ATTR_LABEL_ID,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import floor_registry as fr
from homeassistant.helpers import label_registry as lr
from pi_secure_ws_testing.agent import RunningAgent
from pi_secure_ws_testing.ha import agent_id
from pi_secure_ws_testing.waiting import wait_for
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_secure_ws.const import DOMAIN

LAWN = "valve.test_pi_lawn"
BEDS = "valve.test_pi_beds"


def queue(agent: RunningAgent) -> list[str]:
    return [item["zone"] for item in agent.app.devices["sprinklers"].state()["queue"]]


async def run_zone(hass: HomeAssistant, target: dict[str, object], seconds: int = 5) -> None:
    await hass.services.async_call(
        DOMAIN, "run_zone", {"duration": {"seconds": seconds}}, target=target, blocking=True
    )


def pi_device(hass: HomeAssistant, entry: MockConfigEntry, agent: RunningAgent) -> dr.DeviceEntry:
    # The entry's devices, not async_get_device(identifiers=...): Home Assistant 2026 refuses that
    # call (identifiers are no longer unique across entries); its replacements are not in 2025.4.
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    (device,) = [d for d in devices if (DOMAIN, agent_id(agent)) in d.identifiers]
    return device


async def test_a_device_target_runs_its_zones(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """The Pi's device holds lights, sensors and two zones: only the zones run, by entity id."""
    device = pi_device(hass, loaded_entry, agent)
    await run_zone(hass, {ATTR_DEVICE_ID: device.id})
    # max_concurrent = 1: beds (first by entity id) runs, lawn waits.
    await wait_for(lambda: hass.states.get(BEDS).state == "open")
    assert queue(agent) == ["lawn"]
    assert hass.states.get("light.test_pi_porch").state == "off"


async def test_named_zones_run_in_the_order_given_before_those_of_an_area(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    area = ar.async_get(hass).async_create("Garden")
    er.async_get(hass).async_update_entity(BEDS, area_id=area.id)
    er.async_get(hass).async_update_entity("light.test_pi_shed", area_id=area.id)
    await run_zone(hass, {ATTR_ENTITY_ID: [LAWN], ATTR_AREA_ID: area.id})
    await wait_for(lambda: hass.states.get(LAWN).state == "open")
    assert queue(agent) == ["beds"]
    assert hass.states.get("light.test_pi_shed").state == "off"


async def test_a_target_without_zones_is_an_error_not_silence(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    area = ar.async_get(hass).async_create("Porch")
    er.async_get(hass).async_update_entity("light.test_pi_porch", area_id=area.id)
    with pytest.raises(ServiceValidationError) as err:
        await run_zone(hass, {ATTR_AREA_ID: area.id})
    assert err.value.translation_key == "no_zone_targeted"
    # A target naming something that is not a zone stops everything, before any zone starts.
    with pytest.raises(ServiceValidationError) as err:
        await run_zone(hass, {ATTR_ENTITY_ID: [LAWN, "light.test_pi_porch"]})
    assert err.value.translation_key == "not_a_zone"
    assert err.value.translation_placeholders == {"entity_id": "light.test_pi_porch"}
    assert hass.states.get(LAWN).state == "closed"
    assert queue(agent) == []


async def test_zones_of_an_unloaded_pi_in_a_target_fail_the_action(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    device = pi_device(hass, loaded_entry, agent)
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await run_zone(hass, {ATTR_DEVICE_ID: device.id})
    assert err.value.translation_key == "entry_not_loaded"


async def test_a_floor_or_a_label_reaches_the_zones_in_it(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    floor = fr.async_get(hass).async_create("Outside")
    area = ar.async_get(hass).async_create("Front garden", floor_id=floor.floor_id)
    er.async_get(hass).async_update_entity(LAWN, area_id=area.id)
    await run_zone(hass, {ATTR_FLOOR_ID: floor.floor_id})
    await wait_for(lambda: hass.states.get(LAWN).state == "open")
    assert queue(agent) == []

    label = lr.async_get(hass).async_create("Drip lines")
    er.async_get(hass).async_update_entity(BEDS, labels={label.label_id})
    await run_zone(hass, {ATTR_LABEL_ID: label.label_id})
    await wait_for(lambda: queue(agent) == ["beds"])


async def test_all_runs_every_zone_and_none_runs_nothing(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await run_zone(hass, {ATTR_ENTITY_ID: "none"})
    assert err.value.translation_key == "no_zone_targeted"
    await run_zone(hass, {ATTR_ENTITY_ID: "all"})
    await wait_for(lambda: hass.states.get(BEDS).state == "open")
    assert queue(agent) == ["lawn"]
