"""The ``pi-agent`` command line: set up, run, check and pair the agent, manage clients, and a
small client (``ctl``) for scripts and debugging.

Every failure is one line on stderr and a non-zero exit status, never a traceback (set
``PI_AGENT_DEBUG=1`` to see one). Secrets are printed only when created, and are never read from
the command line, where every user could see them in ``ps``. The work is done by
:mod:`pi_agent.provision` (also used by ``install-service``) and :mod:`pi_agent.ctl`; this
module only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from pi_secure_ws_protocol.const import DEFAULT_CLIENT_ID, DEFAULT_PORT, Role
from pi_secure_ws_protocol.pinning import normalize_fingerprint

from . import __version__, install_service, pki, provision
from .console import PROG, err, out, print_json
from .credentials import CredentialError
from .ctl import EPILOG, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, cmd_ctl
from .errors import CliError, ConfigError, ProvisionError

DEBUG_ENV: Final = "PI_AGENT_DEBUG"
RELOAD_HINT: Final = "A running agent applies this on SIGHUP: systemctl reload pi-agent"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line instead of usage text plus the error.

    Abbreviations are off: ``--secret VALUE`` must not be taken for ``--secret-file``, which
    would put a secret in argv and then echo it back in "file not found".
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            # Not echoed: a mistyped option may carry a secret (`--secret VALUE`).
            message = "unrecognized arguments (not repeated here, in case one is a secret)"
        # Long values are not echoed either: a secret typed in the wrong place is one.
        message = re.sub(r"invalid choice: '[^']{21,}'", "invalid choice", message)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --- entry point ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors (already printed)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except CliError as error:
        for line in error.lines:
            err(line)
        return error.status
    except ConfigError as error:
        for problem in error.problems:
            err(problem)
        return EXIT_ERROR
    except (ProvisionError, pki.PkiError, CredentialError) as error:
        err(str(error))
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        err(f"{where}{error.strerror or error}")
        return EXIT_ERROR
    except Exception as error:
        if os.environ.get(DEBUG_ENV):
            raise
        err(f"internal error: {type(error).__name__}: {error} (set {DEBUG_ENV}=1 for details)")
        return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Raspberry Pi agent for the pi_secure_ws integration.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, handler: Callable[[argparse.Namespace], int]) -> Any:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def config_dir(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config-dir", type=Path, required=True, metavar="DIR")

    sub = command("init", "create a configuration, certificates and the first client", cmd_init)
    config_dir(sub)
    sub.add_argument("--host", help="name clients use to reach the agent (default: HOSTNAME.local)")
    sub.add_argument("--port", type=_port, default=DEFAULT_PORT)
    sub.add_argument("--name", help="name shown in Home Assistant (default: the host name)")
    sub.add_argument(
        "--hardware",
        choices=("auto", "mock", "gpio"),
        default="auto",
        help="auto: gpio on a Raspberry Pi, else mock pins with demo devices",
    )
    sub.add_argument(
        "--camera",
        choices=("picamera2", "test_pattern"),
        help="camera backend written to agent.toml (default: picamera2 with --hardware gpio, "
        "the test pattern with mock pins)",
    )
    sub.add_argument("--json", action="store_true", help="print the pairing details as JSON")
    sub.add_argument("--force", action="store_true", help="replace an existing configuration")

    sub = command("run", "run the agent", cmd_run)
    config_dir(sub)
    sub.add_argument(
        "--log-level", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"), default="INFO"
    )

    install_service.register(commands).set_defaults(handler=install_service.main)

    # The way off that needs no running agent: the unit runs it at every stop and start.
    sub = command(
        "safe-off",
        "drive every configured relay to its safe level now (reads agent.toml only; no agent)",
        cmd_safe_off,
    )
    config_dir(sub)

    sub = command("check-config", "validate agent.toml and the file permissions", cmd_check)
    config_dir(sub)

    sub = command("pairing", "show what a client needs to pair (never a secret)", cmd_pairing)
    config_dir(sub)
    sub.add_argument("--json", action="store_true")

    sub = command("renew-cert", "renew the TLS certificate (the CA, and pairings, stay)", cmd_renew)
    config_dir(sub)
    sub.add_argument("--force", action="store_true", help="renew even if not close to expiry")

    client = command("client", "manage the clients allowed to log in", _missing_subcommand)
    client_commands = client.add_subparsers(dest="client_command", required=True, metavar="ACTION")

    def client_command(name: str, help_text: str, handler: Callable[..., int]) -> Any:
        sub = client_commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        config_dir(sub)
        return sub

    sub = client_command("add", "add a client and print its new secret", cmd_client_add)
    sub.add_argument("client_id", metavar="NAME")
    sub.add_argument("--role", required=True, choices=[role.label for role in Role])
    sub.add_argument("--json", action="store_true")
    sub = client_command("rotate", "give a client a new secret", cmd_client_rotate)
    sub.add_argument("client_id", metavar="NAME")
    sub.add_argument("--json", action="store_true")
    sub = client_command("remove", "remove a client", cmd_client_remove)
    sub.add_argument("client_id", metavar="NAME")
    sub = client_command("list", "list the clients and their roles", cmd_client_list)
    sub.add_argument("--json", action="store_true")

    sub = command("ctl", "talk to a running agent", _missing_subcommand)
    sub.epilog = EPILOG
    sub.add_argument("--host", required=True)
    sub.add_argument("--port", type=_port, default=DEFAULT_PORT)
    sub.add_argument("--fingerprint", required=True, type=_fingerprint, help="the pinned CA")
    sub.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    sub.add_argument("--secret-file", type=Path, metavar="PATH")
    ctl_commands = sub.add_subparsers(dest="ctl_command", required=True, metavar="ACTION")
    ctl_sub = ctl_commands.add_parser("state", help="print every device and its state")
    ctl_sub.set_defaults(handler=cmd_ctl)
    ctl_sub = ctl_commands.add_parser("watch", help="print state changes until interrupted")
    ctl_sub.set_defaults(handler=cmd_ctl)
    ctl_sub = ctl_commands.add_parser("call", help="run a device action")
    ctl_sub.set_defaults(handler=cmd_ctl)
    ctl_sub.add_argument("device")
    ctl_sub.add_argument("action")
    ctl_sub.add_argument("params", nargs="*", metavar="key=value", help="values are JSON or text")
    ctl_sub.add_argument("--output", type=Path, help="where to write a binary (JPEG) result")
    return parser


def _missing_subcommand(args: argparse.Namespace) -> int:  # pragma: no cover - argparse requires it
    raise CliError("missing action", EXIT_USAGE)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected 1-65535") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected 1-65535")
    return port


def _fingerprint(text: str) -> str:
    try:
        return normalize_fingerprint(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _config_dir(args: argparse.Namespace) -> Path:
    path: Path = args.config_dir.expanduser().absolute()
    return path


def _print_lines(lines: Sequence[str]) -> None:
    for line in lines:
        out(line)


# --- init, run, safe-off, check-config, pairing, renew-cert ---------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    agent = provision.init_agent(
        _config_dir(args),
        host=args.host,
        port=args.port,
        name=args.name,
        hardware=args.hardware,
        camera=args.camera,
        force=args.force,
    )
    if args.json:
        print_json(agent.pairing())
        return EXIT_OK
    demo = (
        "demo devices on mock pins" if agent.hardware == "mock" else "device sections commented out"
    )
    out(f"Initialised {agent.config_dir} (hardware: {agent.hardware}, {demo}).")
    out()
    _print_lines(provision.secret_lines(agent.pairing(), role=Role.CONTROL.label))
    out()
    out(f"Check the configuration: {PROG} check-config --config-dir {agent.config_dir}")
    out(f"Start the agent:         {PROG} run --config-dir {agent.config_dir}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from .app import run_agent

    return run_agent(_config_dir(args), args.log_level)


def cmd_safe_off(args: argparse.Namespace) -> int:
    from . import safe_off

    return safe_off.run(args.config_dir)


def cmd_check(args: argparse.Namespace) -> int:
    config_dir = _config_dir(args)
    if not config_dir.is_dir():
        raise CliError(f"{config_dir}: no such directory (run `{PROG} init --config-dir DIR`)")
    problems = provision.check_config(config_dir)
    if problems:
        for problem in problems:
            err(problem)
        return EXIT_ERROR
    out("configuration OK")
    return EXIT_OK


def cmd_pairing(args: argparse.Namespace) -> int:
    details = provision.pairing(_config_dir(args))
    if args.json:
        print_json(details.as_json())
    else:
        _print_lines(details.lines())
    return EXIT_OK


def cmd_renew(args: argparse.Namespace) -> int:
    renewed, not_after = provision.renew_certificate(_config_dir(args), force=args.force)
    until = f"{not_after:%Y-%m-%d}"
    if renewed:
        out(f"Certificate renewed, valid until {until}; the CA and pairings are unchanged.")
        out("Restart the agent to use it: systemctl restart pi-agent")
    else:
        out(f"Certificate valid until {until}; not renewed (use --force to renew anyway).")
    return EXIT_OK


# --- client ---------------------------------------------------------------------------------------


def _report_secret(args: argparse.Namespace, issued: provision.IssuedSecret) -> None:
    if args.json:
        print_json(issued.as_json())
        print(RELOAD_HINT, file=sys.stderr)
        return
    _print_lines(provision.secret_lines(issued.as_json(), role=issued.role.label))
    out(RELOAD_HINT)


def cmd_client_add(args: argparse.Namespace) -> int:
    issued = provision.add_client(_config_dir(args), args.client_id, Role.parse(args.role))
    _report_secret(args, issued)
    return EXIT_OK


def cmd_client_rotate(args: argparse.Namespace) -> int:
    _report_secret(args, provision.rotate_client(_config_dir(args), args.client_id))
    return EXIT_OK


def cmd_client_remove(args: argparse.Namespace) -> int:
    provision.remove_client(_config_dir(args), args.client_id)
    out(f"Removed client {args.client_id}.")
    out(RELOAD_HINT)
    return EXIT_OK


def cmd_client_list(args: argparse.Namespace) -> int:
    clients = provision.list_clients(_config_dir(args))
    if args.json:
        print_json(
            [
                {"client_id": c.client_id, "role": c.role.label, "created": c.created.isoformat()}
                for c in clients
            ]
        )
        return EXIT_OK
    if not clients:
        out(f"No clients ({provision.ADD_CLIENT_HINT}).")
    for client in clients:
        out(f"{client.client_id:<24} {client.role.label:<8} created {client.created:%Y-%m-%d}")
    return EXIT_OK
