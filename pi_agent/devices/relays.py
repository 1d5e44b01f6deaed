"""Relays that fail safe: retried writes, a minimum switching interval, and a deadline guard thread.

The sprinkler controller schedules its relays on the event loop. If that loop stops running (a
blocking call, a deadlock, a CPU hog), no deadline would fire until systemd's watchdog kills the
process. ``DeadlineGuard`` is a small thread that holds the latest moment each relay that is on
must be off again (published by the loop after every scheduling pass) and switches everything off
when one of them passes.

What the guard thread may do, and what not:

- it may only switch relays **off** (pump or master valve first, then the valves after the lag),
  never on; once it has tripped, ``Relay.switch(True)`` refuses until the loop has seen the trip
  and made its own state agree (``acknowledge``), so a loop that wakes up late cannot reopen a
  valve on a stale plan;
- it never touches the scheduler's data, the state store, sessions or the asyncio loop (none of
  them is thread-safe), and it never pings systemd's watchdog: a stuck loop must still get the
  agent killed and restarted, only sooner safe;
- it logs after switching off, not before.

Every relay write, from the loop or the guard, holds one lock, so two writes to a pin never
interleave; the guard waits for it only briefly, because an "off" is always safe to send.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from pi_agent.devices.base import DeviceError
from pi_agent.pins import hold_inactive

_LOGGER = logging.getLogger(__name__)

# A relay write that raises is tried this often before the relay is reported as failed.
SWITCH_ATTEMPTS: Final = 3
# How late past its published deadline the guard lets a relay be, and how often it looks.
GUARD_GRACE: Final = 0.5
GUARD_PERIOD: Final = 0.1
# A relay that is on without a published deadline (a scheduling bug) gets this long.
UNLISTED_GRACE: Final = 2.0
_LOCK_WAIT: Final = 0.5


class RelayError(DeviceError):
    """Writing a relay's pin failed, every attempt."""


class Relay:
    """One relay output. ``on`` is what it was last switched to; after a failed "off" it stays
    True (the relay may still be on), and ``failed`` says why."""

    def __init__(
        self,
        label: str,
        pin: int,
        output: Any,
        lock: threading.Lock,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.pin = pin
        self._output = output
        self._lock = lock
        self.on = False
        self.failed: str | None = None
        self._clock = clock
        self.last_change = -math.inf  # clock() (monotonic) of the last real change
        self.refuse_on: Callable[[], str | None] = lambda: None
        self.switch_count = 0

    def switch(self, on: bool, *, lock_wait: float = -1) -> None:
        """Switch, retrying a failing write; raise RelayError when every attempt failed."""
        if on:
            reason = self.refuse_on()
            if reason:
                raise RelayError(f"{self.label} (GPIO{self.pin}) not switched on: {reason}")
        locked = self._lock.acquire(timeout=lock_wait)
        try:
            error: Exception | None = None
            for _ in range(SWITCH_ATTEMPTS):
                try:
                    if on:
                        self._output.on()
                    else:
                        self._output.off()
                except Exception as err:
                    error = err
                    continue
                if self.on != on:
                    self.last_change = self._clock()
                    self.switch_count += 1
                self.on = on
                self.failed = None
                return
        finally:
            if locked:
                self._lock.release()
        verb = "on" if on else "off"
        self.failed = f"switching {verb} failed {SWITCH_ATTEMPTS} times: {error}"
        raise RelayError(f"{self.label} (GPIO{self.pin}): {self.failed}") from error

    def hold(self) -> None:
        """Off, and let go of the pin while it stays an output at the inactive level."""
        with self._lock:
            try:
                hold_inactive(self._output)
                self.on = False
            except Exception as err:
                _LOGGER.error("%s (GPIO%d): holding it off failed: %s", self.label, self.pin, err)


def switch_all_off(relays: Iterable[Relay], *, lock_wait: float = -1) -> list[str]:
    """Every relay off; one failing relay never keeps the others on. Returns the failures."""
    failures = []
    for relay in relays:
        try:
            relay.switch(False, lock_wait=lock_wait)
        except RelayError as err:
            failures.append(str(err))
    return failures


class DeadlineGuard:
    """A daemon thread that switches every relay off when one stays on past its deadline."""

    def __init__(
        self,
        pump: Relay | None,
        zones: list[Relay],
        lag: float,
        *,
        grace: float = GUARD_GRACE,
        period: float = GUARD_PERIOD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pump = pump
        self._clock = clock
        self._zones = zones
        self._lag = lag
        self._grace = grace
        self._period = period
        self._table_lock = threading.Lock()
        self._deadlines: dict[Relay, float] = {}
        self._unlisted_since: dict[Relay, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.tripped: str | None = None
        self.trips = 0
        for relay in self._relays():
            relay.refuse_on = self._refusal

    def _relays(self) -> list[Relay]:
        return ([self._pump] if self._pump is not None else []) + self._zones

    def _refusal(self) -> str | None:
        return None if self.tripped is None else f"the deadline guard tripped ({self.tripped})"

    def publish(self, deadlines: dict[Relay, float]) -> None:
        """From the loop: the latest moment (monotonic) each relay that is on must be off."""
        with self._table_lock:
            self._deadlines = dict(deadlines)

    def acknowledge(self) -> str | None:
        """From the loop, once it has cleared its plan: relays may switch on again."""
        reason, self.tripped = self.tripped, None
        return reason

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._watch, name="relay deadline guard", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def _watch(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self.check(self._clock())
            except Exception:  # the guard must outlive any bug of its own
                _LOGGER.exception("relay deadline guard: check failed")

    def check(self, now: float) -> bool:
        """Trip if a relay is on past its deadline (plus the grace); True when it tripped."""
        overdue: list[tuple[Relay, float]] = []
        with self._table_lock:
            for relay in self._relays():
                if not relay.on:
                    self._unlisted_since.pop(relay, None)
                    continue
                deadline = self._deadlines.get(relay)
                if deadline is None:
                    deadline = self._unlisted_since.setdefault(relay, now) + UNLISTED_GRACE
                if now > deadline + self._grace:
                    overdue.append((relay, deadline))
        if not overdue:
            return False
        if self.tripped is not None:
            # Tripped already and a relay is still on: its "off" failed. Keep trying, quietly
            # (the trip was logged), until the loop takes over or the process is killed.
            switch_all_off([relay for relay, _ in overdue], lock_wait=_LOCK_WAIT)
            return False
        relay, deadline = overdue[0]
        self.tripped = f"{relay.label} was due off {now - deadline:.1f} s ago"
        self.trips += 1
        failures = self._all_off()
        _LOGGER.error(
            "relay deadline guard: %s and the event loop did not switch it off; every relay "
            "was switched off%s",
            self.tripped,
            "" if not failures else "; failed: " + "; ".join(failures),
        )
        return True

    def _all_off(self) -> list[str]:
        pump = self._pump
        failures = []
        pump_was_on = pump is not None and pump.on
        if pump is not None:
            failures += switch_all_off([pump], lock_wait=_LOCK_WAIT)
        if pump_was_on and self._lag > 0:
            self._stop.wait(self._lag)  # the pump spins down before its valves close
        failures += switch_all_off(self._zones, lock_wait=_LOCK_WAIT)
        return failures
