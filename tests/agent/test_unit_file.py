"""The shipped systemd unit: `systemd-analyze verify` accepts it and `systemd-analyze security`
rates it 2.0 or lower, with the devices, paths and privileges the agent needs and no more."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from pi_agent.errors import InstallError
from pi_agent.service_files import render_unit, unit_template

MAX_EXPOSURE = 2.0
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed"
)


def venv_pi_agent() -> Path:
    """The pi-agent of the environment running the tests: ExecStart must name an existing file."""
    path = Path(sys.executable).parent / "pi-agent"
    assert path.is_file(), f"{path} missing: install the repository into this environment"
    return path


def write_unit(directory: Path, text: str) -> Path:
    path = directory / "pi-agent.service"
    path.write_text(text, encoding="utf-8")
    return path


def directives(text: str) -> dict[str, list[str]]:
    """Key -> every value assigned to it, in order (units may repeat a key)."""
    found: dict[str, list[str]] = defaultdict(list)
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found[key].append(value)
    return found


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, "--no-pager", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def exposure(unit: Path) -> float:
    result = analyze("security", "--offline=true", str(unit))
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert match, f"no exposure figure in systemd-analyze output:\n{output}"
    return float(match.group(1))


def test_template_ships_as_package_data_with_placeholders() -> None:
    template = unit_template()
    for placeholder in ("@PI_AGENT@", "@CONFIG_DIR@", "@STATE_DIR@", "@USER@"):
        assert placeholder in template


def test_rendered_unit_has_the_service_contract() -> None:
    text = render_unit(pi_agent=Path("/opt/pi-agent/bin/pi-agent"))
    assert re.findall(r"@[A-Z_]+@", text) == []
    unit = directives(text)
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert 0 < int(unit["WatchdogSec"][0]) <= 60
    assert unit["Restart"] == ["always"]
    assert unit["RestartPreventExitStatus"] == ["78"]  # the agent's exit status for a bad config
    assert float(unit["RestartSec"][0]) <= 5
    assert float(unit["TimeoutStopSec"][0]) <= 15
    assert unit["ExecStart"] == ["/opt/pi-agent/bin/pi-agent run --config-dir /etc/pi-agent"]
    # The way off without a running agent, after any end of the process and before each start.
    safe_off = "-/opt/pi-agent/bin/python -I -m pi_agent.safe_off --config-dir /etc/pi-agent"
    assert unit["ExecStopPost"] == [safe_off]
    assert unit["ExecStartPre"] == [safe_off]
    assert int(unit["WatchdogSec"][0]) <= 10
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["User"] == ["pi-agent"]
    assert unit["Group"] == ["pi-agent"]
    assert unit["SupplementaryGroups"] == ["gpio video render"]
    assert unit["StateDirectory"] == ["pi-agent"]
    assert unit["ConfigurationDirectory"] == ["pi-agent"]
    assert unit["ReadWritePaths"][0] == "/etc/pi-agent /var/lib/pi-agent"
    assert unit["UMask"] == ["0077"]
    assert unit["CapabilityBoundingSet"] == [""]
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["ProtectHome"] == ["yes"]
    assert unit["PrivateTmp"] == ["yes"]
    assert unit["SystemCallFilter"][0] == "@system-service"
    assert unit["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX AF_NETLINK"]
    # Exactly the GPIO, camera and DRM device classes, nothing else.
    assert unit["DevicePolicy"] == ["closed"]
    assert sorted(unit["DeviceAllow"]) == sorted(
        [
            "char-gpiochip rw",
            "char-*gpiomem rw",
            "char-video4linux rw",
            "char-media rw",
            "char-dma_heap rw",
            "char-drm rw",
        ]
    )


def test_render_fills_paths_user_groups_and_backlight() -> None:
    text = render_unit(
        pi_agent=Path("/srv/agent/bin/pi-agent"),
        config_dir=Path("/srv/agent/config"),
        state_dir=Path("/var/lib/garden/agent"),
        user="garden",
        group="garden",
        supplementary_groups=["video"],
        backlight_dirs=[Path("/sys/devices/platform/rpi_backlight/backlight/rpi_backlight")],
    )
    unit = directives(text)
    assert unit["ExecStart"] == ["/srv/agent/bin/pi-agent run --config-dir /srv/agent/config"]
    assert unit["User"] == ["garden"]
    assert unit["SupplementaryGroups"] == ["video"]
    # Outside /etc systemd cannot manage the config directory; ReadWritePaths still opens it.
    assert unit["ConfigurationDirectory"] == [""]
    assert unit["StateDirectory"] == ["garden/agent"]
    assert unit["ReadWritePaths"] == [
        "/srv/agent/config /var/lib/garden/agent",
        "-/sys/devices/platform/rpi_backlight/backlight/rpi_backlight",
    ]


@pytest.mark.parametrize(
    "bad", [Path("bin/pi-agent"), Path("/opt/my agent/bin/pi-agent")], ids=["relative", "space"]
)
def test_render_refuses_paths_systemd_would_misread(bad: Path) -> None:
    with pytest.raises(InstallError, match="absolute path without spaces"):
        render_unit(pi_agent=bad)


@needs_systemd_analyze
@pytest.mark.parametrize("with_backlight", [False, True], ids=["plain", "backlight"])
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path, with_backlight: bool) -> None:
    backlight = [Path("/sys/devices/platform/backlight/bl0")] if with_backlight else []
    unit = write_unit(tmp_path, render_unit(pi_agent=venv_pi_agent(), backlight_dirs=backlight))
    result = analyze("verify", str(unit))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # verify checks syntax, directives and that ExecStart exists; it does not resolve User=,
    # so the pi-agent user need not exist here. Any complaint about our file fails the test.
    complaints = [line for line in output.splitlines() if "pi-agent.service" in line]
    assert complaints == []


@needs_systemd_analyze
def test_systemd_analyze_verify_rejects_a_broken_unit(tmp_path: Path) -> None:
    """The verify test above can fail: a missing ExecStart binary is reported."""
    text = render_unit(pi_agent=tmp_path / "no-such-pi-agent")
    result = analyze("verify", str(write_unit(tmp_path, text)))
    assert result.returncode != 0
    assert "no-such-pi-agent" in result.stdout + result.stderr


@needs_systemd_analyze
def test_security_exposure_is_at_most_two(tmp_path: Path) -> None:
    unit = write_unit(tmp_path, render_unit(pi_agent=venv_pi_agent()))
    figure = exposure(unit)
    assert figure <= MAX_EXPOSURE, f"exposure {figure} > {MAX_EXPOSURE}"


@needs_systemd_analyze
def test_security_figure_rises_without_the_hardening(tmp_path: Path) -> None:
    """The exposure test can fail: the same unit without its sandbox rates far above 2.0."""
    kept_sections = ("[", "Type=", "ExecStart=", "User=", "Group=", "Description=")
    text = render_unit(pi_agent=venv_pi_agent())
    weakened = "\n".join(line for line in text.splitlines() if line.startswith(kept_sections))
    figure = exposure(write_unit(tmp_path, weakened + "\n"))
    assert figure > MAX_EXPOSURE
