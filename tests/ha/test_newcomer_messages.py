"""Messages render where they are shown; numbers read as whole seconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent_harness import RunningAgent
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.components.number import SERVICE_SET_VALUE
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

EN = Path(__file__).resolve().parents[2] / "custom_components/pi_secure_ws/translations/en.json"
LAWN_RUN_TIME = "number.test_pi_lawn_run_time"


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
