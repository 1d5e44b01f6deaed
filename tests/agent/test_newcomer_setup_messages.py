"""scripts/setup says exactly how to get a missing interpreter on this kind of system.

The real script runs with a PATH and HOME that hide pyenv and every Python 3.13 (as on a stock
Debian 12); /etc/os-release is swapped for other systems' files.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup"


def run_setup(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        ["bash", str(SETUP), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HOME": str(home), "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", **env},
        check=False,
    )


@pytest.fixture
def no_python313(tmp_path: Path) -> Path:
    (tmp_path / "bin").mkdir()
    found = run_setup(tmp_path, "--find-pythons")
    if "python3.13: missing" not in found.stdout:
        # Setting up would build environments: only a machine with no 3.13 but pyenv's tests this.
        pytest.skip(f"this machine has a Python 3.13 outside pyenv: {found.stdout}")
    return tmp_path


def os_release(tmp_path: Path, text: str) -> str:
    path = tmp_path / "os-release"
    path.write_text(text)
    return str(path)


def test_debian_12_names_no_package_that_does_not_exist(no_python313: Path) -> None:
    release = os_release(no_python313, "ID=debian\nVERSION_CODENAME=bookworm\n")
    result = run_setup(no_python313, SETUP_OS_RELEASE=release)
    assert result.returncode == 1
    message = result.stderr
    assert "no Python 3.13" in message
    assert "apt-get install python3.13" not in message  # Bookworm has no such package
    assert "Debian bookworm has no python3.13 package" in message
    assert "uv python install 3.13" in message
    assert "https://astral.sh/uv/install.sh" in message
    assert "pyenv install 3.13" in message
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("ID=debian\nVERSION_CODENAME=trixie\n", "sudo apt-get install python3.13 python3.13-venv"),
        ("ID=ubuntu\nVERSION_CODENAME=noble\n", "ppa:deadsnakes/ppa"),
        ("ID=fedora\n", "sudo dnf install python3.13"),
        ("ID=arch\n", "pyenv install 3.13"),
    ],
)
def test_other_systems(no_python313: Path, release: str, expected: str) -> None:
    result = run_setup(no_python313, SETUP_OS_RELEASE=os_release(no_python313, release))
    assert result.returncode == 1
    assert expected in result.stderr


def test_uv_is_used_where_installed(no_python313: Path) -> None:
    uv = no_python313 / "bin" / "uv"
    uv.write_text('#!/bin/sh\n[ "$*" = "python dir --bin" ] && echo /opt/uv-bin\n')
    uv.chmod(0o755)
    release = os_release(no_python313, "ID=debian\nVERSION_CODENAME=bookworm\n")
    result = run_setup(no_python313, SETUP_OS_RELEASE=release)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert "uv python install 3.13" in lines[1]  # first, before anything else
    assert "/opt/uv-bin" in lines[1]
    assert "astral.sh" not in result.stderr  # no install hint for what is installed
    assert os.access(uv, os.X_OK)
