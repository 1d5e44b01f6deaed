"""``pi-agent install-service``: set the agent up as a hardened systemd service on a Raspberry Pi.

Every step checks first and says "already done" when there is nothing to do, so running the command
twice changes nothing the second time. ``--dry-run`` prints what each step would do and changes
nothing. ``--root DIR`` puts every file under DIR and skips what touches the running system
(useradd, chown, systemctl, udevadm): that is how the tests run it.
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import io
import json
import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

from .fsutil import PRIVATE_DIR_MODE, SECRET_FILES, STATE_SECRET_SUFFIXES, atomic_write

COMMAND: Final = "install-service"
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
# ProtectHome=yes hides these from the service: an agent installed there could not start.
HIDDEN_BY_PROTECT_HOME: Final = (Path("/home"), Path("/root"), Path("/run/user"))
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


class InstallError(Exception):
    """A step failed; the message says which and why."""


@dataclass
class Installer:
    """The install plan for one invocation; each ``step_*`` method checks, then acts or reports."""

    config_dir: Path  # as the service sees it (no --root prefix)
    state_dir: Path
    user: str
    host: str | None
    port: int | None
    dry_run: bool
    root: Path | None
    pi_agent_path: Path
    out: Callable[[str], None] = print
    unit_changed: bool = False
    init_details: dict[str, Any] | None = None
    pending_init: bool = False  # a dry run that would have created the configuration
    notes: list[str] = field(default_factory=list)

    # --- paths --------------------------------------------------------------------------------

    def real(self, path: Path) -> Path:
        """Where ``path`` of the target system is on this machine (under --root when given)."""
        if self.root is None:
            return path
        return self.root / path.relative_to("/")

    def target(self, path: Path) -> Path:
        """The inverse of :meth:`real`: the target system's path for a local one."""
        if self.root is None:
            return path
        try:
            return Path("/") / path.relative_to(self.root)
        except ValueError:
            return path

    @property
    def touches_system(self) -> bool:
        """False under --dry-run and --root: no useradd, chown, systemctl or udevadm."""
        return not self.dry_run and self.root is None

    # --- running the plan ---------------------------------------------------------------------

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            (f"System user {self.user}", self.step_user),
            (f"Configuration {self.config_dir}", self.step_config),
            (f"State directory {self.state_dir}", self.step_state_dir),
            ("Ownership and modes", self.step_ownership),
            (f"Unit {UNIT_PATH}", self.step_unit),
            ("Reboot permission (polkit)", self.step_polkit),
            ("Backlight permission (udev)", self.step_udev),
            ("Service enabled and running", self.step_service),
        ]

    def run(self) -> None:
        steps = self.steps()
        for number, (title, step) in enumerate(steps, start=1):
            try:
                outcome = step()
            except InstallError as err:
                self.out(f"[{number}/{len(steps)}] {title}: FAILED: {err}")
                raise
            self.out(f"[{number}/{len(steps)}] {title}: {outcome}")
        self.print_pairing()

    def _do(self, what: str, action: Callable[[], None]) -> str:
        """Run ``action`` unless this is a dry run; either way say what it is."""
        if self.dry_run:
            return f"would {what}"
        action()
        return f"done: {what}"

    # --- steps --------------------------------------------------------------------------------

    def wanted_groups(self) -> list[str]:
        return [name for name in DEVICE_GROUPS if _group_exists(name)]

    def step_user(self) -> str:
        groups = self.wanted_groups()
        missing_groups = sorted(set(DEVICE_GROUPS) - set(groups))
        skipped = f" (no {', '.join(missing_groups)} group here)" if missing_groups else ""
        if self.root is not None:
            return f"skipped under --root{skipped}"
        try:
            existing = pwd.getpwnam(self.user)
        except KeyError:
            argv = [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                str(self.state_dir),
                "--shell",
                "/usr/sbin/nologin",
                "--comment",
                "pi_secure_ws agent",
            ]
            if groups:
                argv += ["--groups", ",".join(groups)]
            argv.append(self.user)
            return self._do(f"run: {shlex.join(argv)}{skipped}", lambda: _run(argv))
        member_of = {g.gr_name for g in grp.getgrall() if self.user in g.gr_mem}
        member_of.add(grp.getgrgid(existing.pw_gid).gr_name)
        lacking = [name for name in groups if name not in member_of]
        if not lacking:
            return f"already done (groups: {', '.join(groups) or 'none'}){skipped}"
        argv = ["usermod", "--append", "--groups", ",".join(lacking), self.user]
        return self._do(f"run: {shlex.join(argv)}", lambda: _run(argv))

    def step_config(self) -> str:
        config_dir = self.real(self.config_dir)
        messages = []
        if not (config_dir / "agent.toml").exists():
            argv = ["init", "--config-dir", str(config_dir), "--json"]
            if self.host:
                argv += ["--host", self.host]
            if self.port is not None:
                argv += ["--port", str(self.port)]
            shown = " ".join(["pi-agent", *argv])
            self.pending_init = self.dry_run
            messages.append(self._do(f"run: {shown}", lambda: self._init(argv)))
        elif self.host or self.port is not None:
            self.notes.append(
                f"{self.config_dir / 'agent.toml'} already exists: --host/--port are not "
                "applied to it (edit advertise_host/port there, then "
                "`pi-agent renew-cert --force` for a new host name)"
            )
        messages.append(self._point_state_dir(config_dir))
        return "; ".join(messages)

    def _init(self, argv: list[str]) -> None:
        from . import cli

        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            status = cli.main(argv)
        if status != 0:
            raise InstallError(f"pi-agent init failed (exit status {status}); see the line above")
        try:
            details = json.loads(captured.getvalue())
        except ValueError:
            raise InstallError("pi-agent init printed no pairing details") from None
        self.init_details = details

    def _point_state_dir(self, config_dir: Path) -> str:
        """Make agent.toml's ``state_dir`` the service's state directory, moving old state along."""
        toml_path = config_dir / "agent.toml"
        if not toml_path.exists():
            # Only in a dry run: init has not run.
            return f"would set [agent] state_dir = {json.dumps(str(self.state_dir))}"
        text = toml_path.read_text(encoding="utf-8")
        try:
            current = tomllib.loads(text).get("agent", {}).get("state_dir", "state")
        except tomllib.TOMLDecodeError as err:
            raise InstallError(f"{toml_path}: not valid TOML: {err}") from None
        if not isinstance(current, str):
            raise InstallError(f"{toml_path}: agent.state_dir: expected a path string")
        if Path(current) == self.state_dir:
            return f"already done (state_dir = {current})"
        # Where the old state is on this machine, and how agent.toml spells paths inside it: a
        # relative state_dir is relative to the config directory as init wrote it.
        if Path(current).is_absolute():
            old_state_text, old_state_local = Path(current), self.real(Path(current))
        else:
            old_state_text = old_state_local = config_dir / current
        new_text = _set_state_dir(text, self.state_dir)
        # Paths inside the old state directory (the frame's pictures folder) move with it.
        new_text = _replace_path_prefix(new_text, old_state_text, self.state_dir)

        def apply() -> None:
            _move_contents(old_state_local, self.real(self.state_dir))
            atomic_write(toml_path, new_text.encode())

        return self._do(
            f"set [agent] state_dir = {json.dumps(str(self.state_dir))} "
            f"(was {json.dumps(current)}; its files move there)",
            apply,
        )

    def step_state_dir(self) -> str:
        state_dir = self.real(self.state_dir)
        if state_dir.is_dir():
            return "already done"
        return self._do(
            f"create {self.state_dir} (mode 0700)",
            lambda: state_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True),
        )

    def step_ownership(self) -> str:
        owner = self._owner_ids()
        what_all = (
            f"make everything in {self.config_dir} and {self.state_dir} owned by {self.user}, "
            "both directories 0700, secret and state files 0600"
        )
        user_pending = owner is None and self.root is None
        if self.dry_run and (self.pending_init or user_pending):
            # The files or the user do not exist yet; the real run creates them first.
            return f"would {what_all}"
        changes: list[tuple[Path, int | None, tuple[int, int] | None]] = []
        for top in (self.real(self.config_dir), self.real(self.state_dir)):
            if top.is_dir():
                changes += _ownership_changes(top, owner)
        if not changes:
            skipped = " (ownership not changed under --root)" if owner is None else ""
            return f"already done{skipped}"
        owner_count = sum(1 for _, _, ids in changes if ids is not None)
        mode_count = sum(1 for _, mode, _ in changes if mode is not None)
        what = f"chown {owner_count} path(s) to {self.user}, chmod {mode_count} path(s)"

        def apply() -> None:
            for path, mode, ids in changes:
                if ids is not None:
                    os.chown(path, *ids, follow_symlinks=False)
                if mode is not None:
                    path.chmod(mode)

        return self._do(what, apply)

    def _owner_ids(self) -> tuple[int, int] | None:
        """(uid, gid) the files should have; None under --root or while the user does not exist."""
        if self.root is not None:
            return None
        try:
            entry = pwd.getpwnam(self.user)
        except KeyError:
            return None
        return entry.pw_uid, entry.pw_gid

    def step_unit(self) -> str:
        unit_path = self.real(UNIT_PATH)
        content = render_unit(
            pi_agent=self.pi_agent_path,
            config_dir=self.config_dir,
            state_dir=self.state_dir,
            user=self.user,
            group=self._group_name(),
            supplementary_groups=self.wanted_groups(),
            backlight_dirs=self.backlight_dirs(),
        )
        if _read_text(unit_path) == content:
            return "already done"
        self.unit_changed = True
        verb = "update" if unit_path.exists() else "write"

        def apply() -> None:
            unit_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(unit_path, content.encode(), PUBLIC_FILE_MODE)

        return self._do(f"{verb} it (ExecStart={self.pi_agent_path} run ...)", apply)

    def _group_name(self) -> str:
        if self.root is None:
            with contextlib.suppress(KeyError):
                return grp.getgrgid(pwd.getpwnam(self.user).pw_gid).gr_name
        return self.user

    def backlight_dirs(self) -> list[Path]:
        """The sysfs device directories behind /sys/class/backlight (as the target sees them)."""
        class_dir = self.real(BACKLIGHT_CLASS)
        try:
            entries = sorted(class_dir.iterdir())
        except OSError:
            return []
        return [self.target(entry.resolve()) for entry in entries]

    def step_polkit(self) -> str:
        rules_dir = self.real(POLKIT_RULES_DIR)
        if not rules_dir.is_dir():
            self.notes.append(
                "polkit is not installed, so the agent's admin `reboot` action will be refused: "
                "`sudo apt install polkitd`, then run install-service again"
            )
            return "skipped: polkit not installed (no /etc/polkit-1/rules.d)"
        rule_path = self.real(POLKIT_RULE_PATH)
        content = POLKIT_RULE_TEMPLATE.format(user=self.user, user_json=json.dumps(self.user))
        if _read_text(rule_path) == content:
            return "already done"
        return self._do(
            f"write {POLKIT_RULE_PATH} (user {self.user} may reboot, nothing else)",
            lambda: atomic_write(rule_path, content.encode(), PUBLIC_FILE_MODE),
        )

    def step_udev(self) -> str:
        rule_path = self.real(UDEV_RULE_PATH)
        if _read_text(rule_path) == UDEV_RULE:
            return "already done"

        def apply() -> None:
            rule_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(rule_path, UDEV_RULE.encode(), PUBLIC_FILE_MODE)
            if self.touches_system and shutil.which("udevadm"):
                _run(["udevadm", "control", "--reload-rules"])
                _run(["udevadm", "trigger", "--subsystem-match=backlight", "--action=add"])

        return self._do(f"write {UDEV_RULE_PATH} and apply it to present backlights", apply)

    def step_service(self) -> str:
        if self.root is not None:
            return "skipped under --root (no systemctl)"
        if self.dry_run and not _systemctl_usable():
            return "would run: systemctl daemon-reload; systemctl enable --now pi-agent"
        enabled = _systemctl_state("is-enabled") == "enabled"
        active = _systemctl_state("is-active") == "active"
        actions: list[list[str]] = []
        if self.unit_changed or _systemctl_show("NeedDaemonReload") == "yes":
            actions.append(["systemctl", "daemon-reload"])
        if not enabled:
            actions.append(["systemctl", "enable", SERVICE_NAME])
        if not active:
            actions.append(["systemctl", "start", SERVICE_NAME])
        elif self.unit_changed:
            actions.append(["systemctl", "restart", SERVICE_NAME])
        if not actions:
            return "already done (enabled, active)"
        shown = "; ".join(shlex.join(argv) for argv in actions)

        def apply() -> None:
            for argv in actions:
                _run(argv)

        return self._do(f"run: {shown}", apply)

    # --- the result ---------------------------------------------------------------------------

    def print_pairing(self) -> None:
        for note in self.notes:
            self.out(f"Note: {note}")
        if self.dry_run:
            self.out("Dry run: nothing was changed.")
            return
        self.out("")
        if self.init_details is not None:
            details = self.init_details
            self.out("Pair Home Assistant with:")
            for label, key in (
                ("host", "host"),
                ("port", "port"),
                ("fingerprint", "fingerprint"),
                ("client id", "client_id"),
                ("secret", "secret"),
            ):
                self.out(f"  {label + ':':<13}{details.get(key)}")
            self.out("")
            self.out("The secret is shown only this once: the agent keeps only a verifier of it.")
            return
        from . import cli

        self.out("Pairing details (the secret was shown when it was created; to issue a new one:")
        self.out(
            f"  sudo -u {self.user} {self.pi_agent_path} client rotate homeassistant "
            f"--config-dir {self.config_dir} && sudo systemctl reload pi-agent):"
        )
        status = cli.main(["pairing", "--config-dir", str(self.real(self.config_dir))])
        if status != 0:
            raise InstallError("could not read the pairing details (see the line above)")


# --- unit rendering -------------------------------------------------------------------------------


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


# --- helpers --------------------------------------------------------------------------------------


def _set_state_dir(text: str, state_dir: Path) -> str:
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


def _replace_path_prefix(text: str, old: Path, new: Path) -> str:
    """Rewrite TOML strings that name ``old`` or a path inside it."""
    old_json = json.dumps(str(old))[:-1]  # without the closing quote
    new_json = json.dumps(str(new))[:-1]
    return re.sub(re.escape(old_json) + r'(?=["/])', lambda _m: new_json, text)


def _move_contents(source: Path, destination: Path) -> None:
    """Move what is in ``source`` into ``destination``; entries already there win (kept)."""
    destination.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if not source.is_dir() or source.resolve() == destination.resolve():
        return
    for entry in sorted(source.iterdir()):
        if not (destination / entry.name).exists():
            shutil.move(str(entry), destination / entry.name)
    with contextlib.suppress(OSError):
        source.rmdir()  # only when it is now empty


def _ownership_changes(
    top: Path, owner: tuple[int, int] | None
) -> list[tuple[Path, int | None, tuple[int, int] | None]]:
    """(path, new mode or None, new owner or None) for each path under ``top`` that needs it.

    Modes follow what the agent checks before it starts (fsutil.check_private): the directory
    itself 0700, secret and state files without group/other access. Other files (pictures) keep
    their mode: the 0700 directory already shuts everyone else out.
    """
    changes: list[tuple[Path, int | None, tuple[int, int] | None]] = []
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


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _run(argv: Sequence[str]) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    except FileNotFoundError:
        raise InstallError(f"{argv[0]}: command not found") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"exit status {result.returncode}"
        raise InstallError(f"{' '.join(argv)}: {reason}")


def _systemctl_usable() -> bool:
    return shutil.which("systemctl") is not None and Path("/run/systemd/system").is_dir()


def _systemctl_query(*argv: str) -> str:
    if not _systemctl_usable():
        raise InstallError("systemd is not running here (no /run/systemd/system)")
    result = subprocess.run(  # noqa: S603
        ["systemctl", *argv],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip()


def _systemctl_state(verb: str) -> str:
    """``systemctl is-enabled``/``is-active`` for the unit: "enabled", "active", ..."""
    return _systemctl_query(verb, SERVICE_NAME)


def _systemctl_show(prop: str) -> str:
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


# --- command line ---------------------------------------------------------------------------------


def _absolute_path(text: str) -> Path:
    path = Path(text)
    if not path.is_absolute():
        raise argparse.ArgumentTypeError(f"{text!r}: must be an absolute path")
    return path


def _user_name(text: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,30}", text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a user name is lower-case letters, digits, '_' and '-' (at most 31)"
        )
    return text


def _port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port}: a port is 1-65535")
    return port


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``install-service`` to the ``pi-agent`` sub-commands; the caller dispatches to main()."""
    help_text = "install and start the agent as a hardened systemd service (run with sudo)"
    parser: argparse.ArgumentParser = subparsers.add_parser(
        COMMAND, help=help_text, description=help_text
    )
    parser.add_argument(
        "--config-dir", type=_absolute_path, default=DEFAULT_CONFIG_DIR, metavar="DIR"
    )
    parser.add_argument(
        "--state-dir", type=_absolute_path, default=DEFAULT_STATE_DIR, metavar="DIR"
    )
    parser.add_argument("--user", type=_user_name, default=DEFAULT_USER, help="service user")
    parser.add_argument("--host", help="name clients use to reach the agent (new config only)")
    parser.add_argument("--port", type=_port_number, help="port to listen on (new config only)")
    parser.add_argument(
        "--dry-run", action="store_true", help="print every step without changing anything"
    )
    parser.add_argument(
        "--root",
        type=_absolute_path,
        metavar="DIR",
        help="install under DIR instead of / and skip useradd, chown and systemctl (for tests)",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    """Run install-service; returns the exit status. Errors are one line on stderr."""
    try:
        installer = _installer(args)
        installer.run()
    except InstallError as err:
        print(f"pi-agent install-service: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        print(f"pi-agent install-service: {where}{err.strerror or err}", file=sys.stderr)
        return 1
    return 0


def _installer(args: argparse.Namespace) -> Installer:
    if os.geteuid() != 0 and not args.dry_run and args.root is None:
        raise InstallError(
            "must run as root to create the user and install the unit: "
            f"sudo {find_pi_agent()} {COMMAND} ... (or add --dry-run to see the steps)"
        )
    pi_agent = find_pi_agent()
    if args.root is None and any(
        pi_agent.is_relative_to(hidden) for hidden in HIDDEN_BY_PROTECT_HOME
    ):
        raise InstallError(
            f"{pi_agent} is under a home directory, which the service cannot see "
            "(ProtectHome=yes); install into /opt/pi-agent as docs/install.md shows"
        )
    return Installer(
        config_dir=args.config_dir,
        state_dir=args.state_dir,
        user=args.user,
        host=args.host,
        port=args.port,
        dry_run=args.dry_run,
        root=args.root,
        pi_agent_path=pi_agent,
    )
