"""sd_notify over a real AF_UNIX datagram socket, as systemd's NOTIFY_SOCKET receives it."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pi_agent import systemd


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to ~108 bytes; pytest's tmp_path can be longer.
    path = Path("/tmp") / f"pi-agent-sd-{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o700)
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


@pytest.fixture
def receiver(short_dir: Path) -> Iterator[tuple[socket.socket, dict[str, str]]]:
    """A bound datagram socket and the environment that points the agent at it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = short_dir / "notify"
    sock.bind(str(address))
    sock.setblocking(False)
    yield sock, {"NOTIFY_SOCKET": str(address)}
    sock.close()


def drain(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def test_ready_stopping_status_and_watchdog_reach_the_socket(
    receiver: tuple[socket.socket, dict[str, str]],
) -> None:
    sock, env = receiver
    assert systemd.notify_ready("listening on 0.0.0.0:8765", environ=env)
    assert systemd.notify_status("2 sessions\nline two", environ=env)
    assert systemd.notify_watchdog(environ=env)
    assert systemd.notify_stopping(environ=env)
    assert drain(sock) == [
        "READY=1\nSTATUS=listening on 0.0.0.0:8765",
        # A status is one line: systemctl status shows only that.
        "STATUS=2 sessions line two",
        "WATCHDOG=1",
        "STOPPING=1",
    ]


def test_abstract_namespace_socket() -> None:
    name = f"pi-agent-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.setblocking(False)
    try:
        assert systemd.notify_ready(environ={"NOTIFY_SOCKET": f"@{name}"})
        assert drain(sock) == ["READY=1"]
    finally:
        sock.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    assert not systemd.notify_ready(environ={})
    assert not systemd.notify_stopping(environ={})
    assert not systemd.notify_watchdog(environ={})
    assert systemd.watchdog_interval(environ={"WATCHDOG_USEC": "30000000"}) is None


def test_process_environment_is_the_default(
    receiver: tuple[socket.socket, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, env = receiver
    monkeypatch.setenv("NOTIFY_SOCKET", env["NOTIFY_SOCKET"])
    assert systemd.notify_watchdog()
    assert drain(sock) == ["WATCHDOG=1"]
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not systemd.notify_watchdog()


def test_unusable_addresses_do_not_raise(short_dir: Path) -> None:
    # Relative path: systemd never sets one.
    assert not systemd.notify_ready(environ={"NOTIFY_SOCKET": "relative/notify"})
    # Nobody listening: the send fails, the agent keeps running.
    assert not systemd.notify_ready(environ={"NOTIFY_SOCKET": str(short_dir / "missing")})


def test_watchdog_interval_is_a_fifth_of_watchdog_usec(
    receiver: tuple[socket.socket, dict[str, str]],
) -> None:
    _, env = receiver
    assert systemd.watchdog_interval({**env, "WATCHDOG_USEC": "30000000"}) == 6.0
    mine = {**env, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert systemd.watchdog_interval(mine) == 6.0
    # Meant for another process (inherited by a child): not ours to ping.
    theirs = {**env, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert systemd.watchdog_interval(theirs) is None
    assert systemd.watchdog_interval(env) is None
    assert systemd.watchdog_interval({**env, "WATCHDOG_USEC": "soon"}) is None
    assert systemd.watchdog_interval({**env, "WATCHDOG_USEC": "0"}) is None


async def test_watchdog_pinger_pings_from_the_loop_and_stops_when_it_hangs(
    receiver: tuple[socket.socket, dict[str, str]],
) -> None:
    sock, env = receiver
    env = {**env, "WATCHDOG_USEC": "40000"}  # ping every 20 ms
    task = asyncio.create_task(systemd.watchdog_pinger(environ=env))
    try:
        await asyncio.sleep(0.15)
        assert drain(sock).count("WATCHDOG=1") >= 3
        # A hung event loop: nothing may ping while it blocks, so systemd would restart us.
        time.sleep(0.15)
        assert drain(sock) == []
        await asyncio.sleep(0.1)
        assert "WATCHDOG=1" in drain(sock)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_watchdog_pinger_returns_at_once_without_a_watchdog(
    receiver: tuple[socket.socket, dict[str, str]],
) -> None:
    sock, env = receiver
    await asyncio.wait_for(systemd.watchdog_pinger(environ=env), timeout=1)
    await asyncio.wait_for(systemd.watchdog_pinger(environ={}), timeout=1)
    assert drain(sock) == []


def test_journal_formatter_prefixes_syslog_priorities() -> None:
    formatter = systemd.JournalFormatter("%(levelname)s %(message)s")

    def line(level: int) -> str:
        record = logging.LogRecord("pi_agent", level, __file__, 1, "msg", None, None)
        return formatter.format(record)

    assert line(logging.CRITICAL) == "<2>CRITICAL msg"
    assert line(logging.ERROR) == "<3>ERROR msg"
    assert line(logging.WARNING) == "<4>WARNING msg"
    assert line(logging.INFO) == "<6>INFO msg"
    assert line(logging.DEBUG) == "<7>DEBUG msg"


def test_stderr_is_journal_only_when_journal_stream_names_stderr() -> None:
    info = os.fstat(2)
    assert systemd.stderr_is_journal({"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"})
    assert not systemd.stderr_is_journal({"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino + 1}"})
    assert not systemd.stderr_is_journal({"JOURNAL_STREAM": "garbage"})
    assert not systemd.stderr_is_journal({})
