"""What the sprinkler controller keeps across restarts: the day's watering and the rain delay.

How long each zone has been open today (for ``max_seconds_per_day``) is kept in the controller's
state file so a restart does not hand out a fresh allowance. "Today" is the Pi's local calendar
day; a damaged or foreign entry counts as nothing watered. The rain delay's end is kept there too,
so a restart does not water in the rain; a damaged one is logged and ignored.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Iterable
from datetime import date, datetime
from typing import Final

import voluptuous as vol

from pi_agent.devices.sprinkler_config import iso, parse_until
from pi_agent.state_store import StateStore

_LOGGER = logging.getLogger(__name__)

WATERED_KEY: Final = "watered_today"
RAIN_DELAY_KEY: Final = "rain_delay_until"


def _local_today() -> date:
    return datetime.now().date()  # the Pi's own (local) day


class WateringLedger:
    """Seconds each zone was open today, persisted (coalesced) through the state store."""

    def __init__(
        self,
        store: StateStore,
        zone_ids: Collection[str],
        *,
        today: Callable[[], date] = _local_today,
    ) -> None:
        self._store = store
        self._today = today
        self._day = today().isoformat()
        self._seconds: dict[str, float] = {}
        saved = store.get(WATERED_KEY)
        if isinstance(saved, dict) and saved.get("date") == self._day:
            seconds = saved.get("seconds")
            for zone_id, value in (seconds if isinstance(seconds, dict) else {}).items():
                if (
                    zone_id in zone_ids
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                    and math.isfinite(value)
                    and value >= 0
                ):
                    self._seconds[zone_id] = float(value)

    def _roll(self) -> None:
        today = self._today().isoformat()
        if today != self._day:
            self._day, self._seconds = today, {}

    def used(self, zone_id: str) -> float:
        self._roll()
        return self._seconds.get(zone_id, 0.0)

    def add(self, zone_id: str, seconds: float) -> None:
        if seconds <= 0:
            return
        self._roll()
        self._seconds[zone_id] = self._seconds.get(zone_id, 0.0) + seconds
        self._store.set(WATERED_KEY, {"date": self._day, "seconds": dict(self._seconds)})

    def watered(self, zone_ids: Iterable[str]) -> dict[str, float]:
        """Seconds each of ``zone_ids`` was open today."""
        return {zone_id: self.used(zone_id) for zone_id in zone_ids}


def saved_rain_delay(store: StateStore, now: datetime) -> datetime | None:
    """The saved rain delay's end, if it is still ahead of ``now``."""
    value = store.get(RAIN_DELAY_KEY)
    if value is None:
        return None
    try:
        until = parse_until(value)
    except vol.Invalid as err:
        _LOGGER.warning("ignoring the saved rain delay %r: %s", value, err)
        return None
    return until if until > now else None


def save_rain_delay(store: StateStore, until: datetime | None) -> None:
    if until is None:
        store.delete(RAIN_DELAY_KEY)
    else:
        store.set(RAIN_DELAY_KEY, iso(until))
    # Rare and worth keeping: written now, not coalesced.
    store.flush()
