"""The conversions of the agent's state values: bad or missing input is None, never an error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from custom_components.pi_secure_ws.util import dig, parse_timestamp, zone_list

MOMENT = datetime(2026, 6, 1, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (MOMENT.timestamp(), MOMENT),
        (int(MOMENT.timestamp()), MOMENT),
        ("2026-06-01T05:30:00+00:00", MOMENT),
        ("2026-06-01T07:30:00+02:00", MOMENT),
        # The agent writes UTC; a time without a zone is read as UTC, not as local time.
        ("2026-06-01T05:30:00", MOMENT),
        (None, None),
        (True, None),  # JSON true is not a moment, though Python counts it as 1
        (1e300, None),  # beyond any calendar
        (float("nan"), None),
        ("tomorrow", None),
        ([2026, 6, 1], None),
    ],
)
def test_parse_timestamp(value: object, expected: datetime | None) -> None:
    parsed = parse_timestamp(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None


def test_parse_timestamp_keeps_the_zone_it_is_given() -> None:
    parsed = parse_timestamp("2026-06-01T07:30:00+02:00")
    assert parsed is not None
    assert parsed.utcoffset() == timezone(timedelta(hours=2)).utcoffset(None)


def test_zone_list_keeps_only_zones_with_an_id() -> None:
    capabilities = {"zones": [{"id": "lawn"}, {"name": "no id"}, "beds", None, {"id": "beds"}]}
    assert zone_list(capabilities) == [{"id": "lawn"}, {"id": "beds"}]
    assert zone_list({}) == []
    assert zone_list({"zones": None}) == []


def test_dig() -> None:
    state = {"zones": {"lawn": {"open": True}}, "queue": ["beds"]}
    assert dig(state, "zones", "lawn", "open") is True
    assert dig(state, "zones", "hedge", "open") is None
    assert dig(state, "queue", "0") is None  # a list is not a level to look into
    assert dig(state) == state
