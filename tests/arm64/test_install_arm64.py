"""docs/install.md's first route, on an emulated 64-bit Debian Bookworm with Debian's Python 3.11.

The checkout is bind-mounted where a Pi owner clones it (/home/pi/pi_secure_ws, owned by the
user), ``scripts/install-pi`` installs the agent from it as the guide says, and then ``pi-agent
init``, ``check-config``, ``install-service --dry-run`` and a mock-pin ``pi-agent run`` run inside
the root; a client on this machine logs in to that agent (``pi-agent ctl state``). Finally the
uninstaller removes everything again, so the cached root stays a fresh system.

Raspberry Pi OS's apt repository is not reachable here: on plain Debian there is no python3-lgpio
or python3-picamera2, so the installer takes lgpio from PyPI (a manylinux aarch64 wheel) and the
camera stack is absent. The timings printed are an indication of a Pi's speed under emulation,
not a benchmark. Needs root, binfmt_misc and debootstrap (scripts/debian-root installs debootstrap
and qemu-user-static with apt when missing); skipped where the machine cannot, loudly under CI.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEBIAN_ROOT = REPO / "scripts" / "debian-root"
ROOT_ARGS = ["bookworm", "--arch", "arm64", "--include", "python3,ca-certificates"]
CHECKOUT_IN_ROOT = "/home/pi/pi_secure_ws"
USER_UID = 1000  # the Pi owner's account; the checkout belongs to it, never to root
CONFIG = "/etc/pi-agent"
PI_AGENT = "/opt/pi-agent/bin/pi-agent"
# Emulated: pip, the first import of cryptography and TLS key generation are slow.
STEP_TIMEOUT = 1800


def _skip(reason: str) -> None:
    if os.environ.get("CI") == "true":
        banner = "!" * 100
        sys.__stderr__.write(
            f"\n{banner}\n!! arm64 install test SKIPPED in CI: {reason}\n"
            "!! the guide's install route on arm64 is NOT checked on this machine\n"
            f"{banner}\n"
        )
    pytest.skip(reason)


def _why_not_here() -> str | None:
    if sys.platform != "linux":
        return "needs Linux"
    if os.geteuid() != 0:
        return "not root: debootstrap, chroot and binfmt_misc need root"
    status = Path("/proc/sys/fs/binfmt_misc/status")
    if not status.exists():
        mounted = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"],
            capture_output=True,
            check=False,
        )
        if mounted.returncode != 0 or not status.exists():
            return "binfmt_misc cannot be mounted here, so arm64 binaries cannot run"
    if shutil.which("debootstrap") is None and shutil.which("apt-get") is None:
        return "no debootstrap, and no apt-get to install it"
    if shutil.which("unshare") is None or shutil.which("chroot") is None:
        return "no unshare/chroot (util-linux, coreutils)"
    return None


class Root:
    """Runs commands in the cached arm64 root through scripts/debian-root."""

    def __init__(self, checkout: Path) -> None:
        self.checkout = checkout
        self.timings: dict[str, float] = {}

    def argv(self, command: Sequence[str], chdir: str = "/") -> list[str]:
        return [
            str(DEBIAN_ROOT),
            "run",
            *ROOT_ARGS,
            "--bind",
            f"{self.checkout}:{CHECKOUT_IN_ROOT}",
            "--chdir",
            chdir,
            "--",
            *command,
        ]

    def run(self, label: str, command: Sequence[str], *, chdir: str = "/", expect: int = 0) -> str:
        started = time.monotonic()
        result = subprocess.run(
            self.argv(command, chdir),
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
        self.timings[label] = time.monotonic() - started
        output = result.stdout + result.stderr
        assert result.returncode == expect, (
            f"{label}: exit status {result.returncode}, expected {expect}:\n{output[-6000:]}"
        )
        return output


@pytest.fixture(scope="module")
def root_path() -> Path:
    reason = _why_not_here()
    if reason:
        _skip(reason)
    started = time.monotonic()
    result = subprocess.run(
        [str(DEBIAN_ROOT), "path", *ROOT_ARGS],
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        detail = message[-1] if message else f"exit status {result.returncode}"
        if "binfmt_misc" in detail or "qemu" in detail:
            _skip(f"this machine cannot emulate arm64: {detail}")
        pytest.fail(f"building the arm64 root failed: {result.stderr[-4000:]}")
    path = Path(result.stdout.strip().splitlines()[-1])
    print(f"\narm64 root: {path} (ready in {time.monotonic() - started:.0f} s)", file=sys.stderr)
    return path


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The working tree as a clone holds it, owned by the Pi owner's account."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    copy = tmp_path / "pi_secure_ws"
    for name in filter(None, listed):
        source = REPO / os.fsdecode(name)
        if not source.is_file():
            continue  # deleted but not yet committed
        target = copy / os.fsdecode(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    for path in [copy, *copy.rglob("*")]:
        os.chown(path, USER_UID, USER_UID, follow_symlinks=False)
    return copy


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Agent:
    """``pi-agent run`` inside the root, in its own process group, its output collected."""

    def __init__(self, argv: list[str]) -> None:
        self.lines: list[str] = []
        self.listening = threading.Event()
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if "listening on" in line:
                self.listening.set()

    def _agent_pids(self) -> list[int]:
        """The agent's own process (under qemu-user) among this run's, found in /proc."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                session = int((entry / "stat").read_text().rpartition(")")[2].split()[3])
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            # Not the helper's own shells, whose command lines name the agent's command too.
            if session != self.process.pid or any(a.endswith(b"debian-root") for a in argv):
                continue
            if any(a == PI_AGENT.encode() and b == b"run" for a, b in itertools.pairwise(argv)):
                pids.append(int(entry.name))
        return pids

    def stop(self) -> int:
        """SIGTERM to the agent itself, as systemd stops it; the helper exits with its status."""
        if self.process.poll() is None:
            for pid in self._agent_pids() or [self.process.pid]:
                os.kill(pid, signal.SIGTERM)
        try:
            status = self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            status = self.process.wait()
        self._reader.join(timeout=10)
        return status

    @property
    def output(self) -> str:
        return "".join(self.lines)


@pytest.fixture
def agent_process() -> Iterator[list[Agent]]:
    agents: list[Agent] = []
    yield agents
    for agent in agents:
        agent.stop()


def _root_owned(checkout: Path) -> list[str]:
    return sorted(
        str(path.relative_to(checkout))
        for path in [checkout, *checkout.rglob("*")]
        if path.lstat().st_uid != USER_UID
    )


@pytest.mark.timeout(4 * STEP_TIMEOUT)
def test_guide_install_on_arm64_bookworm(
    root_path: Path, checkout: Path, agent_process: list[Agent]
) -> None:
    root = Root(checkout)
    root.run("empty run (the helper's own cost)", ["true"])
    machine = root.run("uname", ["sh", "-c", "uname -m; python3 -V"]).split()
    assert machine[0] == "aarch64"
    assert machine[1:] == ["Python", machine[2]] and machine[2].startswith("3.11.")

    if any((root_path / left).exists() for left in ("opt/pi-agent", "etc/pi-agent")):
        # An earlier run was interrupted before its uninstall: start from a fresh system again.
        root.run(
            "clean-up of an interrupted earlier run",
            [f"{CHECKOUT_IN_ROOT}/scripts/install-pi", "--uninstall", "--purge"],
        )

    # The guide's route: scripts/install-pi from the clone, run with sudo (root) from the home.
    dry = root.run(
        "install-pi --dry-run",
        [f"{CHECKOUT_IN_ROOT}/scripts/install-pi", "--dry-run"],
        chdir="/home/pi",
    )
    assert "would run:" in dry
    assert not (root_path / "opt/pi-agent").exists()
    installed = root.run(
        "install (scripts/install-pi --no-service)",
        [f"{CHECKOUT_IN_ROOT}/scripts/install-pi", "--no-service"],
        chdir="/home/pi",
    )
    assert "skipped: python3-lgpio python3-picamera2" in installed  # plain Debian: no such packages
    assert _root_owned(checkout) == [], "the installer left files in the user's checkout"
    assert not list(checkout.glob("*.egg-info")) and not (checkout / "build").exists()
    sources = root.run(
        "which lgpio and picamera2",
        [
            "/opt/pi-agent/bin/python",
            "-c",
            "import importlib.util as u, importlib.metadata as m, json; print(json.dumps({"
            "'lgpio': m.version('lgpio') if u.find_spec('lgpio') else None,"
            "'lgpio_file': u.find_spec('lgpio').origin if u.find_spec('lgpio') else None,"
            "'picamera2': bool(u.find_spec('picamera2')),"
            "'pygame': m.version('pygame-ce')}))",
        ],
        chdir="/tmp",
    )
    found = json.loads(sources.strip().splitlines()[-1])
    assert found["lgpio"] is not None and "/opt/pi-agent/" in found["lgpio_file"]  # from PyPI
    assert found["picamera2"] is False

    port = _free_port()
    init = root.run(
        "pi-agent init",
        [
            PI_AGENT,
            "init",
            "--config-dir",
            CONFIG,
            "--hardware",
            "mock",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--json",
        ],
    )
    pairing = json.loads(init[init.index("{") :])
    toml = root_path / CONFIG.lstrip("/") / "agent.toml"
    toml.write_text(toml.read_text().replace("zeroconf = true", "zeroconf = false"))
    root.run("pi-agent check-config", [PI_AGENT, "check-config", "--config-dir", CONFIG])
    dry_service = root.run(
        "pi-agent install-service --dry-run", [PI_AGENT, "install-service", "--dry-run"]
    )
    assert "Dry run: nothing was changed." in dry_service

    started = time.monotonic()
    agent = Agent(
        root.argv(
            ["env", "SDL_VIDEODRIVER=dummy", PI_AGENT, "run", "--config-dir", CONFIG],
            chdir="/var/lib",
        )
    )
    agent_process.append(agent)
    while not agent.listening.wait(1):
        assert agent.process.poll() is None, f"the agent exited:\n{agent.output[-6000:]}"
        assert time.monotonic() - started < STEP_TIMEOUT, "the agent did not start listening"
    root.timings["start-up (pi-agent run until listening)"] = time.monotonic() - started

    started = time.monotonic()
    ctl = subprocess.run(
        [
            sys.executable,
            "-m",
            "pi_agent",
            "ctl",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--fingerprint",
            pairing["fingerprint"],
            "--client-id",
            pairing["client_id"],
            "state",
        ],
        env={**os.environ, "PI_AGENT_SECRET": pairing["secret"]},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    root.timings["ctl state from this machine (login and states)"] = time.monotonic() - started
    assert ctl.returncode == 0, ctl.stdout + ctl.stderr + agent.output[-4000:]
    assert "lawn" in ctl.stdout and "system" in ctl.stdout
    assert "login: client homeassistant" in agent.output

    status = agent.stop()
    assert status == 0, agent.output[-4000:]
    assert "stopping: outputs are off" in agent.output

    root.run(
        "uninstall (scripts/install-pi --uninstall --purge)",
        [f"{CHECKOUT_IN_ROOT}/scripts/install-pi", "--uninstall", "--purge"],
        chdir="/home/pi",
    )
    for gone in ("opt/pi-agent", "etc/pi-agent", "usr/local/bin/pi-agent"):
        assert not (root_path / gone).exists(), gone

    report = "\n".join(f"  {label:<52} {seconds:7.1f} s" for label, seconds in root.timings.items())
    sys.__stdout__.write(
        f"\narm64 (qemu-user emulation) Debian Bookworm, Python {machine[2]}; lgpio "
        f"{found['lgpio']} from PyPI, picamera2 absent, pygame-ce {found['pygame']}:\n{report}\n"
    )
