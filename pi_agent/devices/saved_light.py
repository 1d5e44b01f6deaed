"""A light's last steady state, kept across restarts for ``startup = "restore"``.

All lights share one ``StateStore`` (``STATE_DIR/lights.json``: atomic, coalesced writes, flushed
on stop); each light's entry is under its id. A damaged entry is ignored with a log line and the
light starts from its configured default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pi_secure_ws_protocol.devices.light import MAX_BRIGHTNESS

from pi_agent.state_store import StateStore

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedLight:
    """A light's last steady state, as kept in ``lights.json`` under the light's id."""

    on: bool
    brightness: int

    @classmethod
    def load(cls, store: StateStore, light_id: str) -> SavedLight | None:
        entry = store.get(light_id)
        if entry is None:
            return None
        try:
            saved = cls(on=entry["on"], brightness=entry["brightness"])
        except (KeyError, TypeError) as err:
            _LOGGER.warning("ignoring the saved state of light %s: %r", light_id, err)
            return None
        valid_level = (
            isinstance(saved.brightness, int)
            and not isinstance(saved.brightness, bool)
            and 0 < saved.brightness <= MAX_BRIGHTNESS
        )
        if not isinstance(saved.on, bool) or not valid_level:
            _LOGGER.warning("ignoring the saved state of light %s: %r", light_id, entry)
            return None
        return saved

    def save(self, store: StateStore, light_id: str) -> None:
        store.set(light_id, {"on": self.on, "brightness": self.brightness})
