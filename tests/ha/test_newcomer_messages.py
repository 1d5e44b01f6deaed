"""Messages render where they are shown; numbers read as whole seconds."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.components.number import SERVICE_SET_VALUE
from homeassistant.const import ATTR_ENTITY_ID, STATE_UNKNOWN, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pi_secure_ws_testing.agent import RunningAgent
from pi_secure_ws_testing.waiting import wait_for
from pytest_homeassistant_custom_component.common import MockConfigEntry

EN = Path(__file__).resolve().parents[2] / "custom_components/pi_secure_ws/translations/en.json"
LAWN_RUN_TIME = "number.test_pi_lawn_run_time"
RAIN_DELAY_ENDS = "sensor.test_pi_rain_delay_ends"


def plain_text_strings(node: Any, path: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Texts the frontend shows as plain text: form errors, field help and exception messages
    (step descriptions, aborts and repair issues are Markdown)."""
    if isinstance(node, dict):
        return [
            found
            for key, value in node.items()
            for found in plain_text_strings(value, (*path, key))
        ]
    if not isinstance(node, str):
        return []
    plain = "error" in path or "data_description" in path or path[:1] == ("exceptions",)
    return [(".".join(path), node)] if plain else []


def test_no_markdown_where_it_shows_as_text() -> None:
    strings = plain_text_strings(json.loads(EN.read_text()))
    assert any(path == "config.error.cannot_connect" for path, _ in strings)
    offenders = [(p, s) for p, s in strings if any(mark in s for mark in ("`", "**", "]("))]
    assert offenders == []


async def test_run_time_reads_as_whole_seconds(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    assert hass.states.get(LAWN_RUN_TIME).state == "60"
    await hass.services.async_call(
        NUMBER_DOMAIN,
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: LAWN_RUN_TIME, "value": 45},
        blocking=True,
    )
    assert hass.states.get(LAWN_RUN_TIME).state == "45"


async def test_rain_delay_reads_cleanly_on_the_device_page(
    hass: HomeAssistant, agent: RunningAgent, loaded_entry: MockConfigEntry
) -> None:
    """A timestamp sensor shows the delay; the date-time input is a disabled config entity."""
    registry = er.async_get(hass)
    setter = registry.async_get("datetime.test_pi_rain_delay_until")
    assert setter is not None
    assert setter.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert setter.entity_category is EntityCategory.CONFIG
    assert hass.states.get(RAIN_DELAY_ENDS).state == STATE_UNKNOWN

    until = (dt_util.utcnow() + timedelta(hours=5)).replace(microsecond=0)
    # Set over the session, as an automation calling the datetime entity does.
    await loaded_entry.runtime_data.async_call(
        "sprinklers", "set_rain_delay", {"until": until.timestamp()}
    )
    await wait_for(lambda: hass.states.get(RAIN_DELAY_ENDS).state != STATE_UNKNOWN)
    state = hass.states.get(RAIN_DELAY_ENDS)
    assert dt_util.parse_datetime(state.state) == until
    assert state.attributes["device_class"] == "timestamp"
