"""The files ``install-service`` writes for systemd, polkit and udev, rendered for one system.

The unit is the template shipped as package data (``pi_agent/data/pi-agent.service``) with its
``@...@`` placeholders filled in; the rules are small enough to live here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Final

from .errors import InstallError

DEFAULT_CONFIG_DIR: Final = Path("/etc/pi-agent")
DEFAULT_STATE_DIR: Final = Path("/var/lib/pi-agent")
DEFAULT_USER: Final = "pi-agent"
SERVICE_NAME: Final = "pi-agent.service"
UNIT_TEMPLATE: Final = "pi-agent.service"
UNIT_PATH: Final = Path("/etc/systemd/system") / SERVICE_NAME
POLKIT_RULES_DIR: Final = Path("/etc/polkit-1/rules.d")
POLKIT_RULE_PATH: Final = POLKIT_RULES_DIR / "50-pi-agent-reboot.rules"
UDEV_RULE_PATH: Final = Path("/etc/udev/rules.d/60-pi-agent-backlight.rules")
BACKLIGHT_CLASS: Final = Path("/sys/class/backlight")
# Groups that own the devices on Raspberry Pi OS; those missing on this system are skipped.
DEVICE_GROUPS: Final = ("gpio", "video", "render")
PUBLIC_FILE_MODE: Final = 0o644

POLKIT_RULE_TEMPLATE: Final = """\
// Installed by `pi-agent install-service`. Lets the service user {user!r}, and nobody else,
// reboot the Pi through logind (`systemctl reboot`) for the agent's admin-only `reboot` action.
// Inhibitors are still honoured. Delete this file to turn remote reboot off.
polkit.addRule(function (action, subject) {{
    if (subject.user == {user_json} &&
        (action.id == "org.freedesktop.login1.reboot" ||
         action.id == "org.freedesktop.login1.reboot-multiple-sessions")) {{
        return polkit.Result.YES;
    }}
}});
"""

UDEV_RULE: Final = """\
# Installed by `pi-agent install-service`: lets the video group (the pi-agent user is in it) set the
# display backlight's brightness and power, for the picture frame's backlight and display_power.
ACTION=="add", SUBSYSTEM=="backlight", RUN+="/bin/chgrp video /sys%p/brightness /sys%p/bl_power"
ACTION=="add", SUBSYSTEM=="backlight", RUN+="/bin/chmod g+w /sys%p/brightness /sys%p/bl_power"
"""


def render_polkit_rule(user: str) -> str:
    """The rule that lets ``user``, and nobody else, reboot through logind."""
    return POLKIT_RULE_TEMPLATE.format(user=user, user_json=json.dumps(user))


def unit_template() -> str:
    """The unit shipped as package data, with its @...@ placeholders."""
    return (resources.files("pi_agent") / "data" / UNIT_TEMPLATE).read_text(encoding="utf-8")


def _managed_directory(path: Path, base: Path) -> str:
    """The name for StateDirectory=/ConfigurationDirectory= when ``path`` is under ``base``;
    empty (a valid assignment meaning "none") otherwise, and ReadWritePaths= still covers it."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return ""


def render_unit(
    *,
    pi_agent: Path,
    config_dir: Path = DEFAULT_CONFIG_DIR,
    state_dir: Path = DEFAULT_STATE_DIR,
    user: str = DEFAULT_USER,
    group: str | None = None,
    supplementary_groups: Sequence[str] = DEVICE_GROUPS,
    backlight_dirs: Sequence[Path] = (),
) -> str:
    """The unit for this system: the template with every placeholder filled in."""
    for label, path in (
        ("pi-agent", pi_agent),
        ("config dir", config_dir),
        ("state dir", state_dir),
    ):
        if not path.is_absolute() or any(c.isspace() for c in str(path)):
            raise InstallError(f"{label} {path}: must be an absolute path without spaces")
    if backlight_dirs:
        backlight = "ReadWritePaths=" + " ".join(f"-{path}" for path in backlight_dirs)
    else:
        backlight = (
            "# No /sys/class/backlight at install time: backlight and bl_power display power are\n"
            "# unavailable (ProtectKernelTunables= keeps /sys read-only). Re-run install-service\n"
            "# after connecting a DSI display."
        )
    replacements = {
        "@PI_AGENT@": str(pi_agent),
        # The interpreter of pi-agent's environment (beside it in a venv's bin/), for safe-off.
        "@PYTHON@": str(pi_agent.with_name("python")),
        "@CONFIG_DIR@": str(config_dir),
        "@STATE_DIR@": str(state_dir),
        "@USER@": user,
        "@GROUP@": group or user,
        "@SUPPLEMENTARY_GROUPS@": " ".join(supplementary_groups),
        "@CONFIGURATION_DIRECTORY@": _managed_directory(config_dir, Path("/etc")),
        "@STATE_DIRECTORY@": _managed_directory(state_dir, Path("/var/lib")),
        "@BACKLIGHT_PATHS@": backlight,
    }
    text = unit_template()
    for placeholder, value in replacements.items():
        text = text.replace(placeholder, value)
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        raise InstallError(f"unit template has unknown placeholders: {', '.join(leftover)}")
    return text
