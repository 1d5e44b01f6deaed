"""One memory budget for what peers make the agent hold: messages being answered, decodes.

Each piece of work reserves its bytes before the cost is paid and gives them back when done;
work that would take the total over the budget is refused (with one answer) instead of started.
Thread-safe: picture decodes reserve from their worker threads.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

MIB = 1024 * 1024


class MemoryBudgetExceeded(ValueError):
    """Raised by ``held``: the reservation would take the agent over its memory budget."""


class MemoryBudget:
    def __init__(self, total: int) -> None:
        self.total = total
        self.in_use = 0
        self.peak = 0
        self.refusals = 0
        self._lock = threading.Lock()

    def reserve(self, size: int) -> bool:
        with self._lock:
            if self.in_use + size > self.total:
                self.refusals += 1
                return False
            self.in_use += size
            self.peak = max(self.peak, self.in_use)
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self.in_use = max(0, self.in_use - size)

    @contextlib.contextmanager
    def held(self, size: int, what: str) -> Iterator[None]:
        if not self.reserve(size):
            raise MemoryBudgetExceeded(
                f"{what} needs {size / MIB:.1f} MiB and the agent's memory budget "
                f"({self.total / MIB:.0f} MiB) is taken; try again later"
            )
        try:
            yield
        finally:
            self.release(size)
