"""Private directories, atomic writes and the permission check the agent runs before it starts.

Secrets (the CA and leaf keys, the client verifiers, persisted state) live in a 0700 directory as
0600 files. Like ssh, the agent refuses to start when any of them is readable by group or others.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

PRIVATE_DIR_MODE: Final = 0o700
PRIVATE_FILE_MODE: Final = 0o600
# Files in the config directory that hold secrets (or verifiers that stand in for them).
SECRET_FILES: Final = ("ca.key", "key.pem", "clients.json")
STATE_DIR_NAME: Final = "state"
# Files under the state directory that must stay private: the block list and known sources reveal
# who talks to the agent; keys must never leak. Pictures may be shared.
STATE_SECRET_SUFFIXES: Final = (".json", ".key", ".pem", ".corrupt")

_GROUP_OTHER: Final = stat.S_IRWXG | stat.S_IRWXO


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) as a 0700 directory, or tighten an existing one to 0700."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)


def atomic_write(path: Path, data: bytes, mode: int = PRIVATE_FILE_MODE) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new content, never a torn file.

    The temporary file is created with ``mode`` from the start (never briefly world-readable),
    flushed to disk, renamed over the target, and the directory entry is synced as well.
    """
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp_path = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp_path.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def check_private(config_dir: Path, state_dir: Path | None = None) -> list[str]:
    """List every permission problem with the config directory and its secret files.

    Each problem names the path and the ``chmod`` that fixes it. ``state_dir`` defaults to
    ``config_dir/state``; pass the configured one when ``agent.toml`` moves it elsewhere.
    """
    problems: list[str] = []
    if not config_dir.is_dir():
        return [f"{config_dir}: not a directory"]
    _check_dir(config_dir, problems)
    for name in SECRET_FILES:
        _check_file(config_dir / name, problems)
    state = state_dir if state_dir is not None else config_dir / STATE_DIR_NAME
    if state.is_dir():
        _check_dir(state, problems)
        for child in sorted(state.rglob("*")):
            if child.suffix in STATE_SECRET_SUFFIXES and not child.is_dir():
                _check_file(child, problems)
    return problems


def _check_dir(path: Path, problems: list[str]) -> None:
    try:
        mode = stat.S_IMODE(path.lstat().st_mode)
    except OSError as err:
        problems.append(f"{path}: cannot read its permissions: {err.strerror}")
        return
    if mode & _GROUP_OTHER:
        problems.append(
            f"{path}: directory is accessible by group or others (mode {mode:04o}); "
            f"fix with: chmod 700 {path}"
        )


def _check_file(path: Path, problems: list[str]) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    except OSError as err:
        problems.append(f"{path}: cannot read its permissions: {err.strerror}")
        return
    if stat.S_ISLNK(info.st_mode):
        # A link could point anywhere, including a file others can replace.
        problems.append(f"{path}: secret file is a symbolic link; replace it with a regular file")
        return
    mode = stat.S_IMODE(info.st_mode)
    if mode & _GROUP_OTHER:
        problems.append(
            f"{path}: secret file is readable by group or others (mode {mode:04o}); "
            f"fix with: chmod 600 {path}"
        )
