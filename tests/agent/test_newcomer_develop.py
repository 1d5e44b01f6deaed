"""scripts/develop tells the truth on a second run, and --reset keeps the tracked configuration.

The script runs for real (bash, python3) in a copy of the repository's layout; only Home
Assistant and the agent are not started, which --status and --reset never do.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAIRING = {
    "host": "localhost",
    "port": 8765,
    "client_id": "homeassistant",
    "secret": "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567-ABCD-EFGH-IJKL-MNOP-QRST",
    "fingerprint": "AB:" * 31 + "AB",
}
LOGIN = {"username": "dev", "password": "correct-horse"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "develop", tmp_path / "scripts" / "develop")
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "configuration.yaml", tmp_path / "config" / "configuration.yaml")
    # The script wants a python3 on PATH; a minimal root may have only python3.14: give it ours.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python3").symlink_to(sys.executable)
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "pairing.json").write_text(json.dumps(PAIRING))
    (demo / "homeassistant-login.json").write_text(json.dumps(LOGIN))
    return tmp_path


def develop(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(repo / "scripts" / "develop"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": f"{repo / 'bin'}:/usr/bin:/bin"},
        check=False,
    )


def paired(repo: Path, title: str = "Demo Pi") -> None:
    storage = repo / "config" / ".storage"
    storage.mkdir(parents=True)
    entries = {"data": {"entries": [{"domain": "pi_secure_ws", "title": title}]}}
    (storage / "core.config_entries").write_text(json.dumps(entries))


def test_status_before_pairing_shows_login_and_pairing_details(repo: Path) -> None:
    result = develop(repo, "--status")
    assert result.returncode == 0, result.stderr
    assert "login: dev, password correct-horse" in result.stdout
    assert "Add the integration" in result.stdout
    assert PAIRING["secret"] in result.stdout
    assert "setup:" not in result.stdout


def test_status_when_paired_says_so(repo: Path) -> None:
    paired(repo)
    result = develop(repo, "--status")
    assert result.returncode == 0, result.stderr
    assert "Paired with Demo Pi" in result.stdout
    assert "Add the integration" not in result.stdout
    assert PAIRING["secret"] not in result.stdout
    assert "login: dev, password correct-horse" in result.stdout


def test_first_start_note_only_on_the_first_start() -> None:
    text = (ROOT / "scripts" / "develop").read_text()
    # The note is conditional on Home Assistant's storage not existing yet.
    assert 'first_start="; the first start takes' in text
    assert '[[ -d "$REPO/config/.storage" ]] ||' in text
    assert "grep --line-buffered -v '^setup: next: '" in text


def port_8123_in_use() -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", 8123)) == 0


def test_reset_keeps_the_tracked_configuration(repo: Path) -> None:
    paired(repo)
    (repo / "config" / "home-assistant_v2.db").write_text("x")
    (repo / "config" / "custom_components").mkdir()
    result = develop(repo, "--reset")
    if port_8123_in_use():  # another Home Assistant runs here: reset must refuse, delete nothing
        assert result.returncode == 1
        assert "stop scripts/develop" in result.stderr
        assert (repo / "demo").exists()
        return
    assert result.returncode == 0, result.stderr
    assert not (repo / "demo").exists()
    assert sorted(p.name for p in (repo / "config").iterdir()) == ["configuration.yaml"]
    assert (repo / "config" / "configuration.yaml").read_text() == (
        ROOT / "config" / "configuration.yaml"
    ).read_text()
    again = develop(repo, "--status")
    assert "No demo agent yet" in again.stdout
    assert "not created yet" in again.stdout


def test_unknown_argument_is_a_clear_error(repo: Path) -> None:
    result = develop(repo, "--frobnicate")
    assert result.returncode == 1
    assert "usage: scripts/develop [--status | --reset]" in result.stderr
