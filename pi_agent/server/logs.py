"""The log budget: what peers make the agent write is bounded, overall and per source.

A flood must not fill the SD card, and no secret may reach a log at any level: websockets logs
every frame at DEBUG (the tails of SCRAM proofs, nonces, whole query strings), so its loggers are
pinned at WARNING whatever ``--log-level`` says, and what they still write is throttled too.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

# websockets' own loggers (server, client and the legacy names), never below WARNING.
WIRE_LOGGERS = ("websockets", "websockets.server", "websockets.client", "websockets.protocol")
MAX_SOURCES = 1024  # per-source buckets kept; the oldest go first


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` a second."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, burst: float, rate: float, now: float | None = None) -> None:
        self.burst = burst
        self.rate = rate
        self.tokens = burst
        self.updated = time.monotonic() if now is None else now

    def take(self, cost: float = 1.0, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class ThrottledLog:
    """Log lines about peers, within a budget: a burst, then ``per_second`` lines a second overall,
    and a smaller burst per source. What is dropped is counted and said with the next line."""

    def __init__(
        self,
        logger: logging.Logger,
        burst: int = 40,
        per_second: float = 1.0,
        burst_per_source: int = 10,
    ) -> None:
        self._logger = logger
        self._overall = TokenBucket(burst, per_second)
        self._burst_per_source = burst_per_source
        self._per_second_per_source = per_second / 4
        self._sources: OrderedDict[str, TokenBucket] = OrderedDict()
        self.dropped = 0

    def log(
        self,
        level: int,
        message: str,
        *args: Any,
        source: str | None = None,
        exc_info: bool = False,
    ) -> None:
        if not self._logger.isEnabledFor(level):
            return
        if source is not None and not self._source_bucket(source).take():
            self.dropped += 1
            return
        if not self._overall.take():
            self.dropped += 1
            return
        if self.dropped:
            self._logger.warning("%d similar lines dropped (log budget)", self.dropped)
            self.dropped = 0
        self._logger.log(level, message, *args, exc_info=exc_info)

    def _source_bucket(self, source: str) -> TokenBucket:
        bucket = self._sources.get(source)
        if bucket is None:
            bucket = TokenBucket(self._burst_per_source, self._per_second_per_source)
            self._sources[source] = bucket
            if len(self._sources) > MAX_SOURCES:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(source)
        return bucket


class _BudgetFilter(logging.Filter):
    """Drop websockets' lines beyond a budget (a burst of 20, then one every ten seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self._bucket = TokenBucket(20, 0.1)

    def filter(self, record: logging.LogRecord) -> bool:
        return self._bucket.take()


_WIRE_FILTER = _BudgetFilter()


def pin_wire_loggers() -> logging.Logger:
    """Keep websockets' frame logging off at every level; the logger to hand to websockets."""
    for name in WIRE_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        if _WIRE_FILTER not in logger.filters:
            logger.addFilter(_WIRE_FILTER)
    return logging.getLogger("websockets.server")
