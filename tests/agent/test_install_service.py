"""`pi-agent install-service` under --root (real files in tmp_path) and --dry-run."""

from __future__ import annotations

import argparse
import json
import os
import stat
import tomllib
from pathlib import Path

import pytest

from pi_agent import install_service
from pi_agent.credentials import CLIENTS_FILE
from pi_agent.fsutil import check_private
from pi_agent.install_system import find_pi_agent
from pi_agent.installer import Installer

STEP_COUNT = len(
    Installer(
        config_dir=Path("/c"),
        state_dir=Path("/s"),
        user="u",
        host=None,
        port=None,
        dry_run=True,
        root=None,
        pi_agent_path=Path("/p"),
    ).steps()
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    install_service.register(parser.add_subparsers(dest="command"))
    status = install_service.main(parser.parse_args(["install-service", *argv]))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def step_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("[")]


def snapshot(root: Path) -> dict[str, tuple[int, bytes | None, int]]:
    """Every path with its mode, content and modification time."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        found[str(path.relative_to(root))] = (info.st_mode, content, info.st_mtime_ns)
    return found


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A target system with polkit installed (its rules directory exists)."""
    target = tmp_path / "target"
    (target / "etc/polkit-1/rules.d").mkdir(parents=True)
    return target


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_dry_run_prints_every_step_and_changes_nothing(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(root)
    status, out, _ = run(capsys, "--root", str(root), "--dry-run", "--host", "garden.local")
    assert status == 0
    lines = step_lines(out)
    assert len(lines) == STEP_COUNT
    assert "would run: pi-agent init" in out
    assert "--host garden.local" in out
    assert "would write /etc/polkit-1/rules.d/50-pi-agent-reboot.rules" in out
    assert "Dry run: nothing was changed." in out
    assert snapshot(root) == before


def test_install_creates_config_state_unit_and_rules(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "--root", str(root), "--host", "garden.local", "--port", "8766")
    assert status == 0, err
    config_dir = root / "etc/pi-agent"
    state_dir = root / "var/lib/pi-agent"

    # Config: private directory, secrets 0600, state moved to /var/lib/pi-agent.
    assert mode(config_dir) == 0o700
    assert mode(state_dir) == 0o700
    for name in ("ca.key", "key.pem", CLIENTS_FILE):
        assert mode(config_dir / name) == 0o600
    assert check_private(config_dir, state_dir) == []
    agent = tomllib.loads((config_dir / "agent.toml").read_text())["agent"]
    assert agent["state_dir"] == "/var/lib/pi-agent"
    assert agent["advertise_host"] == "garden.local"
    assert agent["port"] == 8766
    assert not (config_dir / "state").exists()

    # The unit names this environment's pi-agent and the target's (unprefixed) paths.
    unit = (root / "etc/systemd/system/pi-agent.service").read_text()
    pi_agent = find_pi_agent()
    assert f"ExecStart={pi_agent} run --config-dir /etc/pi-agent\n" in unit
    assert str(root) not in unit
    assert mode(root / "etc/systemd/system/pi-agent.service") == 0o644

    rule = (root / "etc/polkit-1/rules.d/50-pi-agent-reboot.rules").read_text()
    assert 'subject.user == "pi-agent"' in rule
    assert "org.freedesktop.login1.reboot" in rule
    assert "ignore-inhibit" not in rule
    assert "backlight" in (root / "etc/udev/rules.d/60-pi-agent-backlight.rules").read_text()

    # The pairing details, with the new secret, are printed once.
    assert "host:        garden.local" in out
    assert "port:        8766" in out
    assert "fingerprint:" in out
    assert "secret:" in out


def test_second_run_changes_nothing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, first_out, err = run(capsys, "--root", str(root))
    assert status == 0, err
    secret_line = next(line for line in first_out.splitlines() if "secret:" in line)
    before = snapshot(root)

    status, out, err = run(capsys, "--root", str(root))
    assert status == 0, err
    assert snapshot(root) == before
    for line in step_lines(out):
        assert ": already done" in line or ": skipped" in line, line
    # No new secret, and the old one is never repeated.
    assert secret_line not in out
    assert "client rotate homeassistant" in out

    status, out, _ = run(capsys, "--root", str(root), "--dry-run")
    assert status == 0
    assert "would" not in "\n".join(step_lines(out))


def test_existing_config_keeps_its_secrets_and_gets_fixed(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "--root", str(root))
    assert status == 0, err
    config_dir = root / "etc/pi-agent"
    state_dir = root / "var/lib/pi-agent"
    clients = (config_dir / CLIENTS_FILE).read_bytes()
    # Someone loosened a mode and pointed state_dir back into the config directory.
    (config_dir / CLIENTS_FILE).chmod(0o644)
    config_dir.chmod(0o755)
    toml_path = config_dir / "agent.toml"
    text = toml_path.read_text()
    toml_path.write_text(text.replace('state_dir = "/var/lib/pi-agent"', 'state_dir = "state"'))
    (config_dir / "state").mkdir(mode=0o700)
    (config_dir / "state" / "blocklist.json").write_text("{}")

    status, out, err = run(capsys, "--root", str(root))
    assert status == 0, err
    assert "init" not in out
    assert (config_dir / CLIENTS_FILE).read_bytes() == clients
    assert mode(config_dir / CLIENTS_FILE) == 0o600
    assert mode(config_dir) == 0o700
    assert tomllib.loads(toml_path.read_text())["agent"]["state_dir"] == "/var/lib/pi-agent"
    # Comments and every other line survive the edit.
    assert toml_path.read_text().count("\n") == text.count("\n")
    assert (state_dir / "blocklist.json").read_text() == "{}"
    assert not (config_dir / "state").exists()


def test_backlight_found_at_install_is_writable_in_the_unit(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    device = root / "sys/devices/platform/soc/i2c/10-0045/backlight/10-0045"
    device.mkdir(parents=True)
    (root / "sys/class/backlight").mkdir(parents=True)
    (root / "sys/class/backlight/10-0045").symlink_to(device)

    status, _, err = run(capsys, "--root", str(root))
    assert status == 0, err
    unit = (root / "etc/systemd/system/pi-agent.service").read_text()
    assert "ReadWritePaths=-/sys/devices/platform/soc/i2c/10-0045/backlight/10-0045\n" in unit


def test_without_polkit_reboot_is_explained_not_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "--root", str(tmp_path))
    assert status == 0, err
    assert "skipped: polkit not installed" in out
    assert "apt install polkitd" in out
    assert not (tmp_path / "etc/polkit-1").exists()


def test_refuses_without_root(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    before = snapshot(root)
    parser = argparse.ArgumentParser()
    install_service.register(parser.add_subparsers(dest="command"))
    status = install_service.main(parser.parse_args(["install-service"]))
    err = capsys.readouterr().err
    assert status == 1
    assert "must run as root" in err
    assert "--dry-run" in err
    assert err.count("\n") == 1
    assert snapshot(root) == before


def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    install_service.register(parser.add_subparsers(dest="command"))
    for argv in (["--config-dir", "relative"], ["--port", "70000"], ["--user", "Bad User"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["install-service", *argv])
    assert "must be an absolute path" in capsys.readouterr().err


def test_unreadable_agent_toml_is_one_clear_error(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_dir = root / "etc/pi-agent"
    config_dir.mkdir(parents=True, mode=0o700)
    (config_dir / "agent.toml").write_text("[agent\nname = 1\n")
    status, _, err = run(capsys, "--root", str(root))
    assert status == 1
    assert "agent.toml: not valid TOML" in err
    assert "Traceback" not in err


def test_init_json_output_is_parsed_not_echoed(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "--root", str(root))
    assert status == 0, err
    # init ran with --json; its raw JSON (with the secret under "secret") is not dumped as is.
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
    assert '"secret"' not in out


def test_init_failure_is_one_clear_error(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (root / "etc/pi-agent").write_text("a file where the configuration directory goes\n")
    status, out, err = run(capsys, "--root", str(root))
    assert status == 1
    assert "Configuration /etc/pi-agent: FAILED: pi-agent init failed: " in out
    assert err.startswith("pi-agent install-service: pi-agent init failed: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_unreadable_clients_stop_the_pairing_details(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "--root", str(root))
    assert status == 0, err
    (root / "etc/pi-agent" / CLIENTS_FILE).write_text("not json")
    status, out, err = run(capsys, "--root", str(root))
    assert status == 1
    assert err.startswith("pi-agent install-service: could not read the pairing details: ")
    assert CLIENTS_FILE in err
    assert err.count("\n") == 1
    assert "secret:" not in out
