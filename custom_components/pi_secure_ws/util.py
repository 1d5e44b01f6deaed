"""Small conversions of the agent's state values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from homeassistant.util import dt as dt_util


def parse_timestamp(value: Any) -> datetime | None:
    """A moment the agent sent as epoch seconds or an ISO 8601 string; None when absent or bad."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        parsed = dt_util.parse_datetime(value)
        if parsed is not None and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed
    return None


def zone_list(capabilities: dict[str, Any]) -> list[dict[str, Any]]:
    """The zones a sprinkler controller declares, each with at least an id."""
    zones = capabilities.get("zones") or []
    return [zone for zone in zones if isinstance(zone, dict) and "id" in zone]


def dig(state: dict[str, Any], *path: str) -> Any:
    """``state[a][b]...`` or None when any level is missing."""
    value: Any = state
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
