"""Private directories, atomic 0600 writes and the ssh-like permission check."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pi_agent.fsutil import atomic_write, check_private, ensure_private_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_private_dir_creates_0700(tmp_path: Path) -> None:
    target = tmp_path / "a" / "config"
    ensure_private_dir(target)
    assert target.is_dir()
    assert _mode(target) == 0o700


def test_ensure_private_dir_tightens_existing(tmp_path: Path) -> None:
    target = tmp_path / "config"
    target.mkdir()
    target.chmod(0o755)
    ensure_private_dir(target)
    assert _mode(target) == 0o700


def test_atomic_write_is_private_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "secret.json"
    target.write_text("old")
    target.chmod(0o644)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.json"]


def test_atomic_write_honours_mode(tmp_path: Path) -> None:
    target = tmp_path / "ca.pem"
    atomic_write(target, b"cert", mode=0o644)
    assert _mode(target) == 0o644


def test_atomic_write_failure_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "dir-in-the-way"
    target.mkdir()
    (target / "child").write_text("x")
    # Renaming a file over a non-empty directory fails: the write must leave no debris behind.
    with pytest.raises(OSError):
        atomic_write(target, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir-in-the-way"]


def _private_config(tmp_path: Path) -> Path:
    config_dir = tmp_path / "config"
    ensure_private_dir(config_dir)
    for name in ("ca.key", "key.pem", "clients.json"):
        atomic_write(config_dir / name, b"x")
    atomic_write(config_dir / "ca.pem", b"public", mode=0o644)
    atomic_write(config_dir / "cert.pem", b"public", mode=0o644)
    ensure_private_dir(config_dir / "state")
    atomic_write(config_dir / "state" / "blocklist.json", b"{}")
    (config_dir / "state" / "pictures").mkdir()
    (config_dir / "state" / "pictures" / "a.jpg").write_bytes(b"jpeg")
    (config_dir / "state" / "pictures" / "a.jpg").chmod(0o644)
    return config_dir


def test_check_private_accepts_private_config(tmp_path: Path) -> None:
    assert check_private(_private_config(tmp_path)) == []


def test_check_private_reports_open_directory(tmp_path: Path) -> None:
    config_dir = _private_config(tmp_path)
    config_dir.chmod(0o755)
    problems = check_private(config_dir)
    assert len(problems) == 1
    assert str(config_dir) in problems[0]
    assert f"chmod 700 {config_dir}" in problems[0]


@pytest.mark.parametrize("name", ["ca.key", "key.pem", "clients.json", "state/blocklist.json"])
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_check_private_reports_readable_secret(tmp_path: Path, name: str, mode: int) -> None:
    config_dir = _private_config(tmp_path)
    (config_dir / name).chmod(mode)
    problems = check_private(config_dir)
    assert len(problems) == 1
    assert f"{config_dir / name}: secret file is readable by group or others" in problems[0]
    assert f"chmod 600 {config_dir / name}" in problems[0]


def test_check_private_reports_symlinked_secret(tmp_path: Path) -> None:
    config_dir = _private_config(tmp_path)
    (config_dir / "key.pem").unlink()
    (config_dir / "key.pem").symlink_to(config_dir / "ca.key")
    problems = check_private(config_dir)
    assert problems == [
        f"{config_dir / 'key.pem'}: secret file is a symbolic link; replace it with a regular file"
    ]


def test_check_private_uses_given_state_dir(tmp_path: Path) -> None:
    config_dir = _private_config(tmp_path)
    elsewhere = tmp_path / "var-state"
    elsewhere.mkdir(mode=0o755)
    elsewhere.chmod(0o755)
    atomic_write(elsewhere / "devices.json", b"{}", mode=0o644)
    problems = check_private(config_dir, elsewhere)
    assert len(problems) == 2
    assert any(f"chmod 700 {elsewhere}" in p for p in problems)
    assert any(f"chmod 600 {elsewhere / 'devices.json'}" in p for p in problems)


def test_check_private_missing_dir(tmp_path: Path) -> None:
    assert check_private(tmp_path / "nope") == [f"{tmp_path / 'nope'}: not a directory"]
