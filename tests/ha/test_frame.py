"""The picture frame: image, paging buttons, slideshow/display/shuffle switches, album, services."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import pytest
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.button import SERVICE_PRESS
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.components.number import SERVICE_SET_VALUE
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.components.select import SERVICE_SELECT_OPTION
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from pi_secure_ws_testing.agent import RunningAgent
from pi_secure_ws_testing.waiting import wait_for
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.pi_secure_ws.const import DOMAIN

CURRENT = "sensor.test_pi_current_picture_file"  # disabled by default, enabled here
PICTURE = "image.test_pi_current_picture"


@pytest.fixture(autouse=True)
def every_entity_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Entity, "entity_registry_enabled_default", property(lambda self: True))


@pytest.fixture(autouse=True)
def headless_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")


@pytest.fixture
def agent_toml(tmp_path: Path) -> str:
    folder = tmp_path / "pictures"
    for name, colour in (("a.jpg", "red"), ("b.jpg", "green"), ("garden/c.jpg", "blue")):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), colour).save(folder / name)
    return f"""
[frame]
folder = "{folder}"
interval = 3600
width = 64
height = 48
thumbnail_size = 32
"""


def frame_state(agent: RunningAgent) -> dict[str, object]:
    return dict(agent.app.devices["frame"].state())


async def press(hass: HomeAssistant, entity_id: str) -> None:
    await hass.services.async_call(
        BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: entity_id}, blocking=True
    )


async def switch(hass: HomeAssistant, service: str, entity_id: str) -> None:
    await hass.services.async_call(
        SWITCH_DOMAIN, service, {ATTR_ENTITY_ID: entity_id}, blocking=True
    )


async def test_paging_and_show_picture(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    first = frame_state(agent)["current"]
    assert hass.states.get(CURRENT).state == first
    before = hass.states.get(PICTURE).state

    await press(hass, "button.test_pi_next_picture")
    await wait_for(lambda: hass.states.get(CURRENT).state != first)
    assert hass.states.get(CURRENT).state == frame_state(agent)["current"]
    # A new picture is a new image for the browser.
    assert hass.states.get(PICTURE).state != before

    await press(hass, "button.test_pi_previous_picture")
    await wait_for(lambda: hass.states.get(CURRENT).state == first)

    await hass.services.async_call(
        DOMAIN,
        "show_picture",
        {"config_entry_id": loaded_entry.entry_id, "name": "garden/c.jpg"},
        blocking=True,
    )
    await wait_for(lambda: hass.states.get(CURRENT).state == "garden/c.jpg")


async def test_image_is_the_thumbnail(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    agent: RunningAgent,
    loaded_entry: MockConfigEntry,
) -> None:
    client = await hass_client()
    response = await client.get(f"/api/image_proxy/{PICTURE}")
    assert response.status == HTTPStatus.OK
    body = await response.read()
    assert body.startswith(b"\xff\xd8")


async def test_switches_number_and_album(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    assert hass.states.get("switch.test_pi_slideshow").state == "on"
    await switch(hass, SERVICE_TURN_OFF, "switch.test_pi_slideshow")
    await wait_for(lambda: frame_state(agent)["paused"] is True)
    await wait_for(lambda: hass.states.get("switch.test_pi_slideshow").state == "off")
    await switch(hass, SERVICE_TURN_ON, "switch.test_pi_slideshow")
    await wait_for(lambda: frame_state(agent)["paused"] is False)

    await switch(hass, SERVICE_TURN_ON, "switch.test_pi_shuffle")
    await wait_for(lambda: frame_state(agent)["shuffle"] is True)
    await wait_for(lambda: hass.states.get("switch.test_pi_shuffle").state == "on")

    await hass.services.async_call(
        NUMBER_DOMAIN,
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: "number.test_pi_slideshow_interval", "value": 45},
        blocking=True,
    )
    await wait_for(lambda: frame_state(agent)["interval"] == 45)
    await wait_for(lambda: hass.states.get("number.test_pi_slideshow_interval").state == "45")

    album = hass.states.get("select.test_pi_album")
    assert album.state == "all_pictures"
    assert album.attributes["options"] == ["all_pictures", "garden"]
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: "select.test_pi_album", "option": "garden"},
        blocking=True,
    )
    await wait_for(lambda: frame_state(agent)["album"] == "garden")
    await wait_for(lambda: hass.states.get(CURRENT).state == "garden/c.jpg")
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: "select.test_pi_album", "option": "all_pictures"},
        blocking=True,
    )
    await wait_for(lambda: frame_state(agent)["album"] is None)
