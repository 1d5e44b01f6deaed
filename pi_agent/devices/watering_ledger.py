"""How long each sprinkler zone has been open today, for ``max_seconds_per_day``.

Kept in the sprinkler controller's state file so a restart does not hand out a fresh allowance.
"Today" is the Pi's local calendar day; a damaged or foreign entry counts as nothing watered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Final

from pi_agent.state_store import StateStore

WATERED_KEY: Final = "watered_today"


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
