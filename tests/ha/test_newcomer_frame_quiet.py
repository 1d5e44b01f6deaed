"""At default settings the picture frame adds at most a few hundred state rows a day."""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.button import SERVICE_PRESS
from homeassistant.const import ATTR_ENTITY_ID, EVENT_STATE_CHANGED, EntityCategory
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from pi_secure_ws_testing.agent import RunningAgent
from pi_secure_ws_testing.waiting import wait_for
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry

PICTURES = 20
# What "a few hundred rows a day" means here.
MAX_ROWS_A_DAY = 300


@pytest.fixture(autouse=True)
def headless_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")


@pytest.fixture
def agent_toml(tmp_path: Path) -> str:
    """A frame with nothing but its folder and a small screen: the interval is the default."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    for index in range(PICTURES):
        Image.new("RGB", (32, 24), (index * 10, 0, 0)).save(folder / f"{index:02}.jpg")
    return f"""
[frame]
folder = "{folder}"
width = 64
height = 48
"""


async def test_default_frame_is_quiet(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    registry = er.async_get(hass)
    current_file = registry.async_get("sensor.test_pi_current_picture_file")
    assert current_file is not None
    assert current_file.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert current_file.entity_category is EntityCategory.DIAGNOSTIC
    assert hass.states.get("sensor.test_pi_current_picture_file") is None

    changes: list[str] = []

    @callback
    def record(event: Event) -> None:
        changes.append(event.data["entity_id"])

    unsubscribe = hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    frame = agent.app.devices["frame"]
    pages = 10
    for page in range(1, pages + 1):
        before = frame.state()["current"]
        await hass.services.async_call(
            BUTTON_DOMAIN,
            SERVICE_PRESS,
            {ATTR_ENTITY_ID: "button.test_pi_next_picture"},
            blocking=True,
        )
        await wait_for(lambda: frame.state()["current"] != before)  # noqa: B023
        await wait_for(lambda: changes.count("image.test_pi_current_picture") == page)  # noqa: B023
        await hass.async_block_till_done()
    unsubscribe()

    # The buttons' own state (last pressed) is the user's doing, not the slideshow's.
    per_picture = [e for e in changes if not e.startswith("button.")]
    assert set(per_picture) == {"image.test_pi_current_picture"}
    interval = float(frame.state()["interval"])
    rows_a_day = len(per_picture) / pages * 86400 / interval
    assert rows_a_day <= MAX_ROWS_A_DAY, (interval, per_picture)
