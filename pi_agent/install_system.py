"""What ``install-service`` does to the system and its files, one helper per kind of change:
commands (useradd, systemctl, udevadm), ownership and modes, and the agent.toml edit that
points ``state_dir`` at the service's state directory."""

from __future__ import annotations

import contextlib
import grp
import json
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import InstallError
from .fsutil import PRIVATE_DIR_MODE, SECRET_FILES, STATE_SECRET_SUFFIXES
from .service_files import SERVICE_NAME

# (path, new mode or None, new (uid, gid) or None)
Change = tuple[Path, int | None, tuple[int, int] | None]


def set_state_dir(text: str, state_dir: Path) -> str:
    """agent.toml with ``[agent] state_dir`` set, keeping every comment and other line."""
    value = f"state_dir = {json.dumps(str(state_dir))}"
    lines = text.splitlines(keepends=True)
    section = None
    agent_header = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        header = re.fullmatch(r"\[([^\[\]]+)\]", stripped)
        if header:
            section = header.group(1).strip()
            if section == "agent":
                agent_header = index
            continue
        if stripped.startswith("[["):
            section = None
            continue
        if section == "agent" and re.match(r"state_dir\s*=", stripped):
            lines[index] = value + "\n"
            return "".join(lines)
    if agent_header is None:
        return f"[agent]\n{value}\n\n{text}"
    lines.insert(agent_header + 1, value + "\n")
    return "".join(lines)


def replace_path_prefix(text: str, old: Path, new: Path) -> str:
    """Rewrite TOML strings that name ``old`` or a path inside it."""
    old_json = json.dumps(str(old))[:-1]  # without the closing quote
    new_json = json.dumps(str(new))[:-1]
    return re.sub(re.escape(old_json) + r'(?=["/])', lambda _m: new_json, text)


def move_contents(source: Path, destination: Path) -> None:
    """Move what is in ``source`` into ``destination``; entries already there win (kept)."""
    destination.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if not source.is_dir() or source.resolve() == destination.resolve():
        return
    for entry in sorted(source.iterdir()):
        if not (destination / entry.name).exists():
            shutil.move(str(entry), destination / entry.name)
    with contextlib.suppress(OSError):
        source.rmdir()  # only when it is now empty


def ownership_changes(top: Path, owner: tuple[int, int] | None) -> list[Change]:
    """(path, new mode or None, new owner or None) for each path under ``top`` that needs it.

    Modes follow what the agent checks before it starts (fsutil.check_private): the directory
    itself 0700, secret and state files without group/other access. Other files (pictures) keep
    their mode: the 0700 directory already shuts everyone else out.
    """
    changes: list[Change] = []
    for path in [top, *sorted(top.rglob("*"))]:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        mode = stat.S_IMODE(info.st_mode)
        wanted = mode
        if path == top:
            wanted = PRIVATE_DIR_MODE
        elif stat.S_ISREG(info.st_mode) and (
            path.name in SECRET_FILES or path.suffix in STATE_SECRET_SUFFIXES
        ):
            wanted = mode & ~0o077
        ids = owner if owner is not None and (info.st_uid, info.st_gid) != owner else None
        if wanted != mode or ids is not None:
            changes.append((path, wanted if wanted != mode else None, ids))
    return changes


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def useradd_argv(user: str, home: Path, groups: Sequence[str]) -> list[str]:
    """The command that creates the service's system user, without a login or a home."""
    argv = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", str(home)]
    argv += ["--shell", "/usr/sbin/nologin", "--comment", "pi_secure_ws agent"]
    if groups:
        argv += ["--groups", ",".join(groups)]
    argv.append(user)
    return argv


def run(argv: Sequence[str]) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    except FileNotFoundError:
        raise InstallError(f"{argv[0]}: command not found") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit status {result.returncode}"
        raise InstallError(f"{' '.join(argv)}: {reason}")


def systemctl_usable() -> bool:
    return shutil.which("systemctl") is not None and Path("/run/systemd/system").is_dir()


def _systemctl_query(*argv: str) -> str:
    if not systemctl_usable():
        raise InstallError("systemd is not running here (no /run/systemd/system)")
    result = subprocess.run(  # noqa: S603
        ["systemctl", *argv],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip()


def systemctl_state(verb: str) -> str:
    """``systemctl is-enabled``/``is-active`` for the unit: "enabled", "active", ..."""
    return _systemctl_query(verb, SERVICE_NAME)


def systemctl_show(prop: str) -> str:
    return _systemctl_query("show", "--property", prop, "--value", SERVICE_NAME)


def find_pi_agent() -> Path:
    """The pi-agent command of the environment running this: the unit starts that one."""
    beside_python = Path(sys.executable).parent / "pi-agent"
    if beside_python.is_file():
        return beside_python.absolute()
    found = shutil.which("pi-agent")
    if found:
        return Path(found).absolute()
    raise InstallError("cannot find the pi-agent command next to this Python or on PATH")
