"""Failed logins per source address, with exponential back-off.

After ``threshold`` failures a source is refused for ``base_delay`` seconds, then twice as long
after each further failure, up to ``max_delay``. ``decay`` seconds without a failure forget the
source; a successful login clears it. Nothing is permanent, the table is bounded (the oldest
entries go first) and it is written to disk, coalesced, so a restart does not wipe it. Failures are
counted per address only: an attacker cannot lock a client id (Home Assistant) out.

Sources that have logged in before are remembered too (bounded): they keep a reserved
unauthenticated slot while a flood fills the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import BlocklistSettings
from .fsutil import atomic_write

_LOGGER = logging.getLogger(__name__)
SAVE_DELAY = 1.0  # seconds: a flood of failures costs one write a second, not one each
MAX_KNOWN_SOURCES = 64


@dataclass
class _Entry:
    failures: int
    last_failure: float  # wall clock, so the table means something after a restart
    blocked_until: float
    notified_until: float = 0.0  # told of its block; dropped before TLS until then


class BlockList:
    def __init__(
        self,
        path: Path | None,
        settings: BlocklistSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self.settings = settings
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._known: OrderedDict[str, float] = OrderedDict()
        self._save_handle: asyncio.TimerHandle | None = None
        self._load()

    # ---- queries -------------------------------------------------------------------------

    def retry_after(self, source: str) -> float | None:
        """Seconds until ``source`` may try again, or None when it is not blocked."""
        entry = self._current(source)
        if entry is None:
            return None
        remaining = entry.blocked_until - self._clock()
        return remaining if remaining > 0 else None

    def already_notified(self, source: str) -> bool:
        """True when this source was told about its block lately: drop it without TLS.

        Told again every ``remind_every`` seconds, so a person retrying learns why and for how
        long, while a flood costs one handshake per source that often.
        """
        entry = self._current(source)
        now = self._clock()
        return entry is not None and entry.blocked_until > now and entry.notified_until > now

    def mark_notified(self, source: str) -> None:
        entry = self._current(source)
        if entry is not None:
            entry.notified_until = min(
                entry.blocked_until, self._clock() + self.settings.remind_every
            )

    def failures(self, source: str) -> int:
        entry = self._current(source)
        return entry.failures if entry else 0

    def is_known(self, source: str) -> bool:
        return source in self._known

    def __len__(self) -> int:
        return len(self._entries)

    # ---- updates -------------------------------------------------------------------------

    def record_failure(self, source: str) -> float | None:
        """Count a failed login; return the block duration it starts, if any."""
        now = self._clock()
        entry = self._current(source)
        if entry is None:
            entry = _Entry(failures=0, last_failure=now, blocked_until=0.0)
        entry.failures += 1
        entry.last_failure = now
        self._entries[source] = entry
        self._entries.move_to_end(source)
        block = None
        if entry.failures >= self.settings.threshold:
            exponent = min(entry.failures - self.settings.threshold, 32)
            block = min(self.settings.base_delay * (2**exponent), self.settings.max_delay)
            entry.blocked_until = now + block
        if len(self._entries) > self.settings.max_entries:
            self._evict()
        self._schedule_save()
        return block

    def _evict(self) -> None:
        """Make room by forgetting the oldest source that is not blocked.

        Fresh sources with one failure each must not push a blocked source out of the table and
        so wipe its count; only when every entry is blocked does the oldest block go.
        """
        now = self._clock()
        for source, entry in self._entries.items():
            if entry.blocked_until <= now and entry.failures < self.settings.threshold:
                del self._entries[source]
                return
        self._entries.popitem(last=False)

    def record_success(self, source: str) -> None:
        changed = self._entries.pop(source, None) is not None
        if source not in self._known:
            changed = True
        self._known[source] = self._clock()
        self._known.move_to_end(source)
        while len(self._known) > MAX_KNOWN_SOURCES:
            self._known.popitem(last=False)
        if changed:
            self._schedule_save()

    def _current(self, source: str) -> _Entry | None:
        entry = self._entries.get(source)
        if entry is None:
            return None
        now = self._clock()
        if now - entry.last_failure > self.settings.decay and entry.blocked_until <= now:
            del self._entries[source]
            return None
        return entry

    # ---- persistence ---------------------------------------------------------------------

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        try:
            data = json.loads(self._path.read_text())
            for source, raw in data.get("failures", {}).items():
                self._entries[str(source)] = _Entry(
                    failures=int(raw["failures"]),
                    last_failure=float(raw["last_failure"]),
                    blocked_until=float(raw["blocked_until"]),
                )
            for source, seen in data.get("known", {}).items():
                self._known[str(source)] = float(seen)
        except (
            OSError,
            ValueError,  # UnicodeDecodeError too
            KeyError,
            TypeError,
            AttributeError,
            RecursionError,
            MemoryError,
        ) as err:
            # A damaged file (SD card, power cut) must never stop the start; blocks are lost.
            _LOGGER.warning(
                "ignoring unreadable block list %s: %s", self._path, str(err)[:200] or type(err)
            )
            self._entries.clear()
            self._known.clear()

    def _schedule_save(self) -> None:
        if self._path is None or self._save_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save()
            return
        self._save_handle = loop.call_later(SAVE_DELAY, self.save)

    def save(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        if self._path is None:
            return
        data = {
            "failures": {
                source: {
                    "failures": e.failures,
                    "last_failure": e.last_failure,
                    "blocked_until": e.blocked_until,
                }
                for source, e in self._entries.items()
            },
            "known": dict(self._known),
        }
        try:
            atomic_write(self._path, json.dumps(data).encode(), mode=0o600)
        except OSError as err:
            _LOGGER.warning("could not save the block list to %s: %s", self._path, err)
