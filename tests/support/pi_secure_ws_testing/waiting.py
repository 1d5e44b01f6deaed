"""Waiting for a condition on the running event loop, with a clear failure instead of a hang.

Tests never assert on time: a timeout here is only the point at which a test gives up and says
what it was waiting for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

# How often a condition is looked at: often enough to see a relay's short pulse, rarely enough
# not to starve the agent running on the same loop.
POLL_SECONDS = 0.01


async def wait_for(
    condition: Callable[[], object], timeout: float = 10.0, *, what: str | None = None
) -> None:
    """Let the loop run until ``condition()`` is true; fail with an ``AssertionError`` otherwise."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(POLL_SECONDS)
    except TimeoutError:
        described = what or getattr(condition, "__name__", "condition")
        raise AssertionError(f"{described} not reached in {timeout} s") from None


# The name several test files use for the same loop.
wait_until = wait_for
