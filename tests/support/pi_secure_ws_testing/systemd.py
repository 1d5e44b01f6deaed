"""A small stand-in for systemd that runs the shipped unit file's life cycle for real.

It reads the rendered ``pi-agent.service`` and honours its process life-cycle directives as
systemd documents them (systemd.service(5), systemd.kill(5)):

- ``ExecStartPre=`` then ``ExecStart=`` (a leading ``-`` ignores a failing command);
- ``Type=notify`` with ``NotifyAccess=main``: a real ``AF_UNIX`` datagram socket in
  ``$NOTIFY_SOCKET``, messages accepted from the main process only (checked with
  ``SCM_CREDENTIALS``), ``READY=1``, ``STOPPING=1``, ``WATCHDOG=1``;
- ``WatchdogSec=``: ``$WATCHDOG_USEC`` set; no ping for that long sends ``SIGABRT``
  (WatchdogSignal's default), then ``SIGKILL`` after ``TimeoutStopSec=`` (TimeoutAbortSec's
  default);
- ``TimeoutStartSec=``: no READY in time is handled like a failed start (SIGTERM, then SIGKILL);
- stop: ``SIGTERM``, ``SIGKILL`` after ``TimeoutStopSec=``;
- after the main process has ended for any reason: every ``ExecStopPost=`` (each bounded by
  TimeoutStopSec), with ``$SERVICE_RESULT``, ``$EXIT_CODE`` and ``$EXIT_STATUS`` set;
- ``Restart=always`` after ``RestartSec=``, except for an exit status in
  ``RestartPreventExitStatus=`` or after a requested stop (``StartLimitIntervalSec=0``: no limit).

Sandboxing, users and directories are not emulated (they do not change when outputs go off).
Every step is recorded in ``events`` with its ``time.monotonic()``.
"""

from __future__ import annotations

import array
import os
import shlex
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Event:
    at: float
    what: str  # started, ready, watchdog, stopping, exited, stop-post, restart-scheduled, ...
    pid: int = 0
    detail: str = ""


def parse_service(text: str) -> dict[str, list[str]]:
    """[Service] key -> every value, in order."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def _seconds(value: str) -> float:
    value = value.strip()
    for suffix, factor in (("ms", 0.001), ("min", 60.0), ("s", 1.0)):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


@dataclass
class FakeSystemd:
    unit_text: str
    workdir: Path
    env: dict[str, str]
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        service = parse_service(self.unit_text)
        self.service = service

        def one(key: str, default: str) -> str:
            return service.get(key, [default])[-1]

        assert one("Type", "simple") == "notify"
        self.notify_access = one("NotifyAccess", "none")
        self.watchdog_sec = _seconds(one("WatchdogSec", "0"))
        self.restart = one("Restart", "no")
        self.restart_sec = _seconds(one("RestartSec", "0.1"))
        self.timeout_stop = _seconds(one("TimeoutStopSec", "90"))
        self.timeout_start = _seconds(one("TimeoutStartSec", "90"))
        self.prevent = {
            int(v) for v in " ".join(service.get("RestartPreventExitStatus", [])).split()
        }
        self.start_pre = service.get("ExecStartPre", [])
        self.exec_start = one("ExecStart", "")
        self.stop_post = service.get("ExecStopPost", [])
        self.main: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._stop_requested = threading.Event()
        self._lock = threading.Lock()
        self._last_ping = 0.0
        self._ready = False
        self._thread: threading.Thread | None = None
        # AF_UNIX paths are short (108 bytes): pytest's tmp_path can be longer.
        self.socket_path = Path(tempfile.mkdtemp(prefix="sd-")) / "notify"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.socket_path))
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.settimeout(0.02)
        self.logs = self.workdir / "journal.log"

    # -- recording

    def record(self, what: str, pid: int = 0, detail: str = "") -> None:
        with self._lock:
            self.events.append(Event(time.monotonic(), what, pid, detail))

    def find(self, what: str, after: float = 0.0) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.what == what and e.at >= after]

    def wait_for(self, what: str, after: float = 0.0, timeout: float = 60.0) -> Event:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.find(what, after)
            if found:
                return found[0]
            time.sleep(0.01)
        raise AssertionError(f"no {what!r} event in {timeout} s; events: {self.events}")

    # -- running commands

    def _argv(self, command: str) -> tuple[list[str], bool]:
        ignore_failure = command.startswith("-")
        return shlex.split(command.lstrip("-@+!:")), ignore_failure

    def _run_helper(self, kind: str, command: str, extra_env: dict[str, str]) -> int:
        argv, _ = self._argv(command)
        with self.logs.open("ab") as journal:
            helper = subprocess.Popen(
                argv, env={**self.env, **extra_env}, stdout=journal, stderr=journal
            )
            try:
                status = helper.wait(self.timeout_stop)
            except subprocess.TimeoutExpired:
                helper.kill()
                status = helper.wait()
        self.record(kind, helper.pid, str(status))
        return status

    def _notify_env(self) -> dict[str, str]:
        env = {"NOTIFY_SOCKET": str(self.socket_path)}
        if self.watchdog_sec:
            env["WATCHDOG_USEC"] = str(int(self.watchdog_sec * 1_000_000))
        return env

    def _receive(self) -> None:
        try:
            data, ancillary, _flags, _addr = self._sock.recvmsg(
                4096, socket.CMSG_SPACE(struct.calcsize("3i"))
            )
        except (TimeoutError, BlockingIOError):
            return
        sender = 0
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                sender = array.array("i", payload[: struct.calcsize("3i")])[0]
        main = self.main
        if self.notify_access == "main" and (main is None or sender != main.pid):
            self.record("notify-refused", sender, data.decode(errors="replace"))
            return
        for assignment in data.decode(errors="replace").splitlines():
            if assignment == "READY=1":
                self._ready = True
                self._last_ping = time.monotonic()
                self.record("ready", sender)
            elif assignment == "WATCHDOG=1":
                self._last_ping = time.monotonic()
            elif assignment == "STOPPING=1":
                self.record("stopping", sender)

    def _kill_sequence(self, main: subprocess.Popen[bytes], first: int, why: str) -> None:
        self.record(why, main.pid, signal.Signals(first).name)
        main.send_signal(first)
        deadline = time.monotonic() + self.timeout_stop
        while main.poll() is None and time.monotonic() < deadline:
            self._receive()
        if main.poll() is None:
            self.record("final-kill", main.pid, "SIGKILL")
            main.kill()

    def _run_once(self) -> int | None:
        """One start: pre, main until it ends, post. The exit status, or None if killed."""
        for command in self.start_pre:
            status = self._run_helper("start-pre", command, {})
            if status != 0 and not command.startswith("-"):
                return 1
        argv, _ = self._argv(self.exec_start)
        self._ready = False
        with self.logs.open("ab") as journal:
            main = subprocess.Popen(
                argv, env={**self.env, **self._notify_env()}, stdout=journal, stderr=journal
            )
        self.main = main
        self.starts += 1
        started = time.monotonic()
        self.record("started", main.pid)
        stop_sent = False
        while main.poll() is None:
            self._receive()
            now = time.monotonic()
            if self._stop_requested.is_set() and not stop_sent:
                stop_sent = True
                self._kill_sequence(main, signal.SIGTERM, "stop")
            elif not self._ready and now - started > self.timeout_start:
                self._kill_sequence(main, signal.SIGTERM, "start-timeout")
            elif (
                self._ready
                and self.watchdog_sec
                and now - self._last_ping > self.watchdog_sec
                and not stop_sent
            ):
                stop_sent = True
                self._kill_sequence(main, signal.SIGABRT, "watchdog")
        status = main.returncode
        self.record("exited", main.pid, str(status))
        result = "success" if status == 0 else ("signal" if status < 0 else "exit-code")
        post_env = {
            "SERVICE_RESULT": result,
            "EXIT_CODE": "killed" if status < 0 else "exited",
            "EXIT_STATUS": signal.Signals(-status).name.removeprefix("SIG")
            if status < 0
            else str(status),
        }
        for command in self.stop_post:
            self._run_helper("stop-post", command, post_env)
        return status

    def _supervise(self) -> None:
        while True:
            status = self._run_once()
            if self._stop_requested.is_set():
                self.record("inactive")
                return
            if self.restart != "always" or (status is not None and status in self.prevent):
                self.record("failed" if status else "inactive", detail=str(status))
                return
            self.record("restart-scheduled", detail=str(status))
            if self._stop_requested.wait(self.restart_sec):
                self.record("inactive")
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """``systemctl stop``: SIGTERM, SIGKILL after TimeoutStopSec, ExecStopPost, no restart."""
        self._stop_requested.set()
        if self._thread is not None:
            self._thread.join(timeout)
            assert not self._thread.is_alive(), "the service did not stop"
        self._sock.close()
        self.socket_path.unlink(missing_ok=True)
        self.socket_path.parent.rmdir()

    def main_pid(self) -> int:
        assert self.main is not None
        return self.main.pid

    def when(self, predicate: Callable[[], bool], timeout: float = 60.0) -> float:
        """Poll until ``predicate`` holds; return when it first did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return time.monotonic()
            time.sleep(0.005)
        raise AssertionError("condition not reached in time")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
