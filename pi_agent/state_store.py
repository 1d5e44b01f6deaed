"""A small JSON key/value file for state that must survive a restart (light levels, frame position).

Writes are coalesced: a burst of ``set`` calls (a fade, a slideshow) costs one write shortly after,
which spares the Pi's SD card. A corrupt file is kept aside as ``<name>.corrupt`` and the store
starts empty: losing remembered light levels is better than refusing to start.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Final

from .fsutil import PRIVATE_DIR_MODE, atomic_write

_LOGGER = logging.getLogger(__name__)
DEFAULT_WRITE_DELAY: Final = 1.0


class StateStore:
    """Persisted ``dict[str, JSON value]``. Use from one thread (the agent's event loop)."""

    def __init__(self, path: Path, *, write_delay: float = DEFAULT_WRITE_DELAY) -> None:
        self.path = path
        self._write_delay = write_delay
        self._data: dict[str, Any] = self._read()
        self._dirty = False
        self._timer: asyncio.TimerHandle | None = None

    def _read(self) -> dict[str, Any]:
        """The saved state, or {} for a missing, unreadable or damaged file (never raises: a bad
        file must not stop the start that switches the outputs off)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as err:
            _LOGGER.error("cannot read %s (%s); starting with empty state", self.path, err.strerror)
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            return self._set_aside(f"not UTF-8 text: {err.reason} at byte {err.start}")
        except (ValueError, RecursionError, MemoryError) as err:
            return self._set_aside(f"not valid JSON: {type(err).__name__}: {str(err)[:200]}")
        if not isinstance(data, dict):
            return self._set_aside("not a JSON object")
        return data

    def _set_aside(self, reason: str) -> dict[str, Any]:
        corrupt = self.path.with_name(self.path.name + ".corrupt")
        try:
            self.path.replace(corrupt)
        except OSError as err:
            _LOGGER.error("cannot move corrupt %s aside: %s", self.path, err.strerror)
        _LOGGER.warning(
            "%s is corrupt (%s); kept as %s, starting with empty state", self.path, reason, corrupt
        )
        return {}

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Remember ``value`` (JSON-able, else TypeError/ValueError now) and write it soon."""
        json.dumps(value, allow_nan=False)
        if key in self._data and self._data[key] == value:
            return
        self._data[key] = value
        self._dirty = True
        self._schedule()

    def delete(self, key: str) -> None:
        if key in self._data:
            del self._data[key]
            self._dirty = True
            self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Outside the event loop (start-up, tools): nothing would run a timer, write now.
            self.flush()
            return
        self._timer = loop.call_later(self._write_delay, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> bool:
        """Write pending changes now. Returns False (and logs) when the write failed; the changes
        stay pending and the next ``set`` or ``flush`` tries again."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._dirty:
            return True
        try:
            self.path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            payload = json.dumps(self._data, indent=1, sort_keys=True, allow_nan=False)
            atomic_write(self.path, payload.encode() + b"\n")
        except OSError as err:
            _LOGGER.error("cannot write %s: %s", self.path, err.strerror or err)
            return False
        self._dirty = False
        return True
