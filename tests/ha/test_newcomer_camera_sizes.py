"""The camera answers every size Home Assistant can pass on, never with HTTP 500."""

from __future__ import annotations

import io
import logging
from http import HTTPStatus

import pytest
from homeassistant.core import HomeAssistant
from pi_secure_ws_testing.agent import RunningAgent
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.pi_secure_ws.camera import snapshot_side

CAMERA = "camera.test_pi_camera"
NATIVE = (160, 96)  # FULL_TOML's camera

# None: any size. Home Assistant 2026 scales the answer itself for some queries (both sides 0 or
# negative give 1/8 of the native size there, the native size on 2025.4); only our part is tested.
SIZES = [
    ("width=580&height=0", None),  # what the frontend asks while the dialog closes
    ("height=0", NATIVE),
    ("width=0", NATIVE),
    ("width=0&height=0", None),
    ("height=99999", None),
    ("width=99999", None),
    ("width=99999&height=99999", None),
    ("width=1&height=1", None),
    ("width=-5&height=-7", None),
    ("width=80", (80, 48)),
    ("", NATIVE),
]


def test_snapshot_side() -> None:
    assert [snapshot_side(v) for v in (None, -1, 0, 1, 16, 580, 4096, 99999)] == [
        None, None, None, 16, 16, 580, 4096, 4096,
    ]  # fmt: skip


@pytest.mark.parametrize(("query", "size"), SIZES)
async def test_any_size_is_answered(
    hass: HomeAssistant,
    agent: RunningAgent,
    loaded_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    query: str,
    size: tuple[int, int] | None,
) -> None:
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy/{CAMERA}?{query}")
    assert response.status == HTTPStatus.OK, await response.text()
    picture = Image.open(io.BytesIO(await response.read()))
    assert picture.format == "JPEG"
    if size is not None:
        assert picture.size == size


async def test_a_failed_snapshot_is_logged(
    hass: HomeAssistant,
    agent: RunningAgent,
    loaded_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When the agent cannot take a picture the browser gets Home Assistant's 500, and the log
    says why (it said nothing before)."""
    camera = agent.app.devices["camera"]

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("sensor unplugged")

    caplog.set_level(logging.WARNING)
    with pytest.MonkeyPatch.context() as patch:
        # The sensor is what cannot exist here: its capture fails as an unplugged one would.
        patch.setattr(camera._backend, "capture_jpeg", broken)
        client = await hass_client()
        response = await client.get(f"/api/camera_proxy/{CAMERA}?width=80")
    assert response.status == HTTPStatus.INTERNAL_SERVER_ERROR
    assert "Test Pi: no snapshot" in caplog.text
