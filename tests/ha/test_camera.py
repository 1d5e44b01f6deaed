"""The camera: snapshots, the MJPEG live view fed from pushed frames, privacy as on/off."""

from __future__ import annotations

import asyncio
from http import HTTPStatus

import pytest
from homeassistant.components import camera
from homeassistant.components.camera import DOMAIN as CAMERA_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from pi_secure_ws_testing.agent import RunningAgent
from pi_secure_ws_testing.waiting import wait_for
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.pi_secure_ws.const import CONF_CAMERA_FPS

CAMERA = "camera.test_pi_camera"
JPEG_START = b"\xff\xd8"


async def test_snapshot(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    image = await camera.async_get_image(hass, CAMERA)
    assert image.content_type == "image/jpeg"
    assert image.content.startswith(JPEG_START)


async def test_live_view_streams_pushed_frames(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    agent: RunningAgent,
    loaded_entry: MockConfigEntry,
) -> None:
    hass.config_entries.async_update_entry(loaded_entry, options={CONF_CAMERA_FPS: 10})
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy_stream/{CAMERA}")
    assert response.status == HTTPStatus.OK
    assert response.content_type == "multipart/x-mixed-replace"
    received = b""
    async with asyncio.timeout(10):
        while received.count(JPEG_START) < 3:
            received += await response.content.readany()
    assert agent.app.devices["camera"].state()["streaming"] is True
    response.close()
    # Closing the view stops the stream on the agent.
    await wait_for(lambda: agent.app.devices["camera"].state()["subscribers"] == 0)


async def test_privacy_is_on_off(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    await hass.services.async_call(
        CAMERA_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: CAMERA}, blocking=True
    )
    await wait_for(lambda: agent.app.devices["camera"].state()["privacy"] is True)
    with pytest.raises(HomeAssistantError):
        await camera.async_get_image(hass, CAMERA)
    await hass.services.async_call(
        CAMERA_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: CAMERA}, blocking=True
    )
    await wait_for(lambda: agent.app.devices["camera"].state()["privacy"] is False)
    image = await camera.async_get_image(hass, CAMERA)
    assert image.content.startswith(JPEG_START)


def camera_entity(hass: HomeAssistant) -> camera.Camera:
    component = hass.data["entity_components"][CAMERA_DOMAIN]
    entity = component.get_entity(CAMERA)
    assert isinstance(entity, camera.Camera)
    return entity


async def test_the_frame_rate_follows_the_option_within_the_cameras_limit(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    entity = camera_entity(hass)
    hass.config_entries.async_update_entry(loaded_entry, options={CONF_CAMERA_FPS: 4})
    assert entity.frame_interval == pytest.approx(0.25)
    # The option goes up to 15; this camera's max_fps in agent.toml is 10.
    hass.config_entries.async_update_entry(loaded_entry, options={CONF_CAMERA_FPS: 15})
    assert entity.frame_interval == pytest.approx(0.1)


async def test_in_privacy_mode_nothing_is_asked_of_the_agent(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """Home Assistant checks is_on itself; the entity does not rely on that."""
    await hass.services.async_call(
        CAMERA_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: CAMERA}, blocking=True
    )
    entity = camera_entity(hass)
    await wait_for(lambda: not entity.is_on)
    requests = loaded_entry.runtime_data.client.stats["requests"]
    assert await entity.async_camera_image() is None
    assert await entity.handle_async_mjpeg_stream(None) is None  # type: ignore[arg-type]
    assert loaded_entry.runtime_data.client.stats["requests"] == requests
