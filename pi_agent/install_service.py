"""``pi-agent install-service``: set the agent up as a hardened systemd service on a Raspberry Pi.

Every step checks first and says "already done" when there is nothing to do, so running the command
twice changes nothing the second time. ``--dry-run`` prints what each step would do and changes
nothing. ``--root DIR`` puts every file under DIR and skips what touches the running system
(useradd, chown, systemctl, udevadm): that is how the tests run it.

This module is the command line; the steps are :class:`pi_agent.installer.Installer`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, Final

from .errors import InstallError
from .install_system import find_pi_agent
from .installer import Installer
from .service_files import DEFAULT_CONFIG_DIR, DEFAULT_STATE_DIR, DEFAULT_USER

COMMAND: Final = "install-service"
# ProtectHome=yes hides these from the service: an agent installed there could not start.
HIDDEN_BY_PROTECT_HOME: Final = (Path("/home"), Path("/root"), Path("/run/user"))


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
