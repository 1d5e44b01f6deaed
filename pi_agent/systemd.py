"""The systemd service-manager notification protocol (sd_notify), without any dependency.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``: an AF_UNIX datagram socket, either a
path or, written with a leading ``@``, a name in the abstract namespace. Each message is
newline-separated ``KEY=VALUE`` assignments (``READY=1``, ``STOPPING=1``, ``WATCHDOG=1``,
``STATUS=...``). Outside systemd the variable is unset and every function here does nothing.

The watchdog pinger runs as a coroutine on the agent's own event loop: a loop that hangs stops the
pings, and systemd then kills and restarts the agent (``WatchdogSec=`` in the unit).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from typing import Final

_LOGGER = logging.getLogger(__name__)

NOTIFY_SOCKET_ENV: Final = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV: Final = "WATCHDOG_USEC"
WATCHDOG_PID_ENV: Final = "WATCHDOG_PID"
JOURNAL_STREAM_ENV: Final = "JOURNAL_STREAM"
# systemd advises pinging at half the interval at least (sd_watchdog_enabled(3)); a fifth leaves
# room for a loop that is merely slow (an SD card write, a busy Pi Zero) at WatchdogSec=5.
WATCHDOG_PING_FRACTION: Final = 0.2
# A status line is shown by `systemctl status`; keep it one short line.
MAX_STATUS_LENGTH: Final = 200


def _socket_address(environ: Mapping[str, str]) -> str | bytes | None:
    """Where to send notifications; None outside systemd or for an address we cannot use."""
    value = environ.get(NOTIFY_SOCKET_ENV, "")
    if not value:
        return None
    if value.startswith("@"):
        # Abstract namespace: the name starts with a NUL byte instead of '@'.
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    _LOGGER.warning(
        "%s=%r is neither an absolute path nor an abstract socket name; not notifying systemd",
        NOTIFY_SOCKET_ENV,
        value,
    )
    return None


def notify(*assignments: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``KEY=VALUE`` assignments to the service manager in one datagram.

    Returns True when the datagram was sent, False when there is no service manager to tell or the
    send failed (logged; the agent keeps running either way). Never blocks: a full socket buffer
    drops the message rather than stalling the event loop.
    """
    address = _socket_address(os.environ if environ is None else environ)
    if address is None:
        return False
    message = "\n".join(assignments).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message, socket.MSG_DONTWAIT, address)
    except OSError as err:
        _LOGGER.warning("could not notify systemd (%s): %s", assignments[0], err)
        return False
    return True


def _status_assignment(status: str) -> str:
    one_line = " ".join(status.split())
    return f"STATUS={one_line[:MAX_STATUS_LENGTH]}"


def notify_ready(status: str | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Tell systemd the agent is up (it listens): ``systemctl start`` returns now."""
    assignments = ["READY=1"]
    if status:
        assignments.append(_status_assignment(status))
    return notify(*assignments, environ=environ)


def notify_stopping(status: str | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Tell systemd the agent is shutting down on its own (zones off, sessions closing)."""
    assignments = ["STOPPING=1"]
    if status:
        assignments.append(_status_assignment(status))
    return notify(*assignments, environ=environ)


def notify_status(status: str, environ: Mapping[str, str] | None = None) -> bool:
    """Set the one-line status `systemctl status pi-agent` shows."""
    return notify(_status_assignment(status), environ=environ)


def notify_watchdog(environ: Mapping[str, str] | None = None) -> bool:
    """One watchdog keep-alive ping."""
    return notify("WATCHDOG=1", environ=environ)


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings (half of ``WatchdogSec=``); None when no watchdog is armed for us."""
    env = os.environ if environ is None else environ
    if _socket_address(env) is None:
        return None
    raw_usec = env.get(WATCHDOG_USEC_ENV, "")
    if not raw_usec:
        return None
    try:
        usec = int(raw_usec)
    except ValueError:
        _LOGGER.warning("%s=%r is not a number; watchdog not pinged", WATCHDOG_USEC_ENV, raw_usec)
        return None
    if usec <= 0:
        return None
    raw_pid = env.get(WATCHDOG_PID_ENV, "")
    # The watchdog may be meant for another process (the variable leaked into a child).
    if raw_pid and raw_pid != str(os.getpid()):
        return None
    return usec / 1_000_000 * WATCHDOG_PING_FRACTION


async def watchdog_pinger(
    interval: float | None = None, environ: Mapping[str, str] | None = None
) -> None:
    """Ping the watchdog from the running event loop until cancelled.

    ``interval`` defaults to :func:`watchdog_interval`; without an armed watchdog this returns at
    once, so callers can always start it as a task. Pings come from this coroutine and nothing
    else: if the loop stops running callbacks, systemd sees the pings stop and restarts the agent.
    """
    period = watchdog_interval(environ) if interval is None else interval
    if period is None:
        return
    _LOGGER.debug("pinging the systemd watchdog every %.1f s", period)
    while True:
        notify_watchdog(environ)
        await asyncio.sleep(period)


# syslog priorities journald reads from a "<N>" line prefix (SyslogLevelPrefix=yes, the default).
_SYSLOG_PRIORITY: Final = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)
_DEBUG_PRIORITY: Final = 7


def stderr_is_journal(environ: Mapping[str, str] | None = None) -> bool:
    """True when stderr is connected to journald (``$JOURNAL_STREAM`` names its device:inode)."""
    value = (os.environ if environ is None else environ).get(JOURNAL_STREAM_ENV, "")
    device, _, inode = value.partition(":")
    try:
        info = os.fstat(2)
        return (int(device), int(inode)) == (info.st_dev, info.st_ino)
    except (ValueError, OSError):
        return False


class JournalFormatter(logging.Formatter):
    """Prefixes each record with its syslog priority so `journalctl -p warning` filters by level."""

    def format(self, record: logging.LogRecord) -> str:
        priority = next(
            (value for level, value in _SYSLOG_PRIORITY if record.levelno >= level),
            _DEBUG_PRIORITY,
        )
        return f"<{priority}>{super().format(record)}"
