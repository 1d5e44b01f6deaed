"""The install-service plan: one step per thing a hardened service needs, each checking first.

Every step says "already done" when there is nothing to do, so a second run changes nothing;
under ``dry_run`` each says what it would do; under ``root`` every file goes below that directory
and nothing touches the running system. The configuration is made by :mod:`pi_agent.provision`,
the files by :mod:`pi_agent.service_files`, the changes by :mod:`pi_agent.install_system`.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shlex
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pi_secure_ws_protocol.const import DEFAULT_PORT

from . import install_system as system
from . import provision
from .credentials import CredentialError
from .errors import ConfigError, InstallError, ProvisionError
from .fsutil import PRIVATE_DIR_MODE, atomic_write
from .pki import PkiError
from .provision import NewAgent
from .service_files import (
    BACKLIGHT_CLASS,
    DEVICE_GROUPS,
    POLKIT_RULE_PATH,
    POLKIT_RULES_DIR,
    PUBLIC_FILE_MODE,
    SERVICE_NAME,
    UDEV_RULE,
    UDEV_RULE_PATH,
    UNIT_PATH,
    render_polkit_rule,
    render_unit,
)


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
    new_agent: NewAgent | None = None  # what init made in this run, with the new secret
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
        return [name for name in DEVICE_GROUPS if system.group_exists(name)]

    def step_user(self) -> str:
        groups = self.wanted_groups()
        missing_groups = sorted(set(DEVICE_GROUPS) - set(groups))
        skipped = f" (no {', '.join(missing_groups)} group here)" if missing_groups else ""
        if self.root is not None:
            return f"skipped under --root{skipped}"
        try:
            existing = pwd.getpwnam(self.user)
        except KeyError:
            argv = system.useradd_argv(self.user, self.state_dir, groups)
            return self._do(f"run: {shlex.join(argv)}{skipped}", lambda: system.run(argv))
        member_of = {g.gr_name for g in grp.getgrall() if self.user in g.gr_mem}
        member_of.add(grp.getgrgid(existing.pw_gid).gr_name)
        lacking = [name for name in groups if name not in member_of]
        if not lacking:
            return f"already done (groups: {', '.join(groups) or 'none'}){skipped}"
        argv = ["usermod", "--append", "--groups", ",".join(lacking), self.user]
        return self._do(f"run: {shlex.join(argv)}", lambda: system.run(argv))

    def step_config(self) -> str:
        config_dir = self.real(self.config_dir)
        messages = []
        if not (config_dir / "agent.toml").exists():
            # Said as the command that does the same; provision does it, no CLI output parsed.
            argv = ["init", "--config-dir", str(config_dir), "--json"]
            if self.host:
                argv += ["--host", self.host]
            if self.port is not None:
                argv += ["--port", str(self.port)]
            shown = " ".join(["pi-agent", *argv])
            self.pending_init = self.dry_run
            messages.append(self._do(f"run: {shown}", lambda: self._init(config_dir)))
        elif self.host or self.port is not None:
            self.notes.append(
                f"{self.config_dir / 'agent.toml'} already exists: --host/--port are not "
                "applied to it (edit advertise_host/port there, then "
                "`pi-agent renew-cert --force` for a new host name)"
            )
        messages.append(self._point_state_dir(config_dir))
        return "; ".join(messages)

    def _init(self, config_dir: Path) -> None:
        try:
            self.new_agent = provision.init_agent(
                config_dir,
                host=self.host,
                port=DEFAULT_PORT if self.port is None else self.port,
            )
        except (ProvisionError, PkiError, CredentialError) as err:
            raise InstallError(f"pi-agent init failed: {err}") from None
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            raise InstallError(f"pi-agent init failed: {where}{err.strerror or err}") from None

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
        new_text = system.set_state_dir(text, self.state_dir)
        # Paths inside the old state directory (the frame's pictures folder) move with it.
        new_text = system.replace_path_prefix(new_text, old_state_text, self.state_dir)

        def apply() -> None:
            system.move_contents(old_state_local, self.real(self.state_dir))
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
                changes += system.ownership_changes(top, owner)
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
        if system.read_text(unit_path) == content:
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
        content = render_polkit_rule(self.user)
        if system.read_text(rule_path) == content:
            return "already done"
        return self._do(
            f"write {POLKIT_RULE_PATH} (user {self.user} may reboot, nothing else)",
            lambda: atomic_write(rule_path, content.encode(), PUBLIC_FILE_MODE),
        )

    def step_udev(self) -> str:
        rule_path = self.real(UDEV_RULE_PATH)
        if system.read_text(rule_path) == UDEV_RULE:
            return "already done"

        def apply() -> None:
            rule_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(rule_path, UDEV_RULE.encode(), PUBLIC_FILE_MODE)
            if self.touches_system and shutil.which("udevadm"):
                system.run(["udevadm", "control", "--reload-rules"])
                system.run(["udevadm", "trigger", "--subsystem-match=backlight", "--action=add"])

        return self._do(f"write {UDEV_RULE_PATH} and apply it to present backlights", apply)

    def step_service(self) -> str:
        if self.root is not None:
            return "skipped under --root (no systemctl)"
        if self.dry_run and not system.systemctl_usable():
            return "would run: systemctl daemon-reload; systemctl enable --now pi-agent"
        enabled = system.systemctl_state("is-enabled") == "enabled"
        active = system.systemctl_state("is-active") == "active"
        actions: list[list[str]] = []
        if self.unit_changed or system.systemctl_show("NeedDaemonReload") == "yes":
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
                system.run(argv)

        return self._do(f"run: {shown}", apply)

    # --- the result ---------------------------------------------------------------------------

    def print_pairing(self) -> None:
        for note in self.notes:
            self.out(f"Note: {note}")
        if self.dry_run:
            self.out("Dry run: nothing was changed.")
            return
        self.out("")
        if self.new_agent is not None:
            details = self.new_agent.pairing()
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
            self.out(provision.SHOWN_ONCE_NOTE)
            return
        try:
            pairing = provision.pairing(self.real(self.config_dir))
        except (ConfigError, PkiError, CredentialError) as err:
            raise InstallError(f"could not read the pairing details: {err}") from None
        self.out("Pairing details (the secret was shown when it was created; to issue a new one:")
        self.out(
            f"  sudo -u {self.user} {self.pi_agent_path} client rotate homeassistant "
            f"--config-dir {self.config_dir} && sudo systemctl reload pi-agent):"
        )
        for line in pairing.lines():
            self.out(line)
