"""When to connect again: exponential back-off with jitter, a short fast window after the agent
said it is restarting, the agent's own wait when it blocks this address, and never after a failure
only a user can fix (a retried refused login would only trip the agent's block list).

Pure policy: the clock and the randomness are injected, the waiting is the client's.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .const import CloseCode
from .errors import Recovery, classify

# After a 1001 "going away" (the agent restarting) retry quickly for a while before backing off.
RESTART_RETRY = 0.25
RESTART_WINDOW = 15.0

Uniform = Callable[[float, float], float]


class ReconnectPolicy:
    """The delays of one client's reconnects."""

    def __init__(
        self,
        min_backoff: float,
        max_backoff: float,
        *,
        clock: Callable[[], float],
        uniform: Uniform = random.uniform,
    ) -> None:
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._clock = clock
        self._uniform = uniform
        self._delay = min_backoff
        self._fast_until = 0.0

    def connected(self) -> None:
        """A connect succeeded: the next failure starts from the shortest delay again."""
        self._delay = self.min_backoff

    def delay_after(self, error: Exception) -> float | None:
        """Seconds to wait after a failed connect; None when only a user can fix ``error``."""
        meaning = classify(error)
        if meaning.recovery is not Recovery.RETRY:
            return None
        if meaning.retry_after is not None:
            # Blocked: the agent said how long; jitter keeps clients from all returning at once.
            return meaning.retry_after + self._uniform(0, 1)
        if self._clock() < self._fast_until:
            # The agent said it is restarting: it is back within seconds.
            return RESTART_RETRY * self._uniform(0.8, 1.2)
        delay = self._delay * self._uniform(0.8, 1.2)
        self._delay = min(self._delay * 2, self.max_backoff)
        return delay

    def may_reconnect(self, error: Exception | None, close_code: int | None) -> bool:
        """After a session ended: False when the agent ended it in a way only a user can fix
        (credentials revoked or rotated on the agent: another login would only fail and count)."""
        if error is not None and classify(error).recovery is not Recovery.RETRY:
            return False
        if close_code == CloseCode.GOING_AWAY:
            self._fast_until = self._clock() + RESTART_WINDOW
        return True
