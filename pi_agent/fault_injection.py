"""Faults the safety tests inject into a real agent process, with mock hardware only.

``PI_AGENT_FAULTS`` (comma-separated) is read only when ``hardware = "mock"``, so it can never
change an agent that drives real pins:

- ``hang-on-sigusr1``: SIGUSR1 blocks the event loop's thread for two minutes (a Python-level
  signal handler runs on the main thread, which is the loop's), as a stuck blocking call would;
  other threads (the relay deadline guard) go on running.
- ``slow-stop=SECONDS``: every device that holds no output (camera, frame, system) takes that much
  longer to stop, like a camera pipeline or display that hangs on close.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import Final

FAULTS_ENV: Final = "PI_AGENT_FAULTS"
HANG_SECONDS: Final = 120.0


@dataclass(frozen=True)
class Faults:
    hang_on_sigusr1: bool = False
    slow_stop: float = 0.0


def read_faults(mock: bool, environ: dict[str, str] | None = None) -> Faults:
    raw = (os.environ if environ is None else environ).get(FAULTS_ENV, "")
    if not mock or not raw:
        return Faults()
    hang = False
    slow = 0.0
    for item in raw.split(","):
        name, _, value = item.strip().partition("=")
        if name == "hang-on-sigusr1":
            hang = True
        elif name == "slow-stop":
            slow = float(value)
    return Faults(hang_on_sigusr1=hang, slow_stop=slow)


def install(faults: Faults) -> None:
    if faults.hang_on_sigusr1:
        signal.signal(signal.SIGUSR1, lambda _signum, _frame: time.sleep(HANG_SECONDS))
