"""The ``pi-agent`` command line: set up, run, check and pair the agent, manage clients, and a
small client (``ctl``) for scripts and debugging.

Every failure is one line on stderr and a non-zero exit status, never a traceback (set
``PI_AGENT_DEBUG=1`` to see one). Secrets are printed only when created, and are never read from
the command line, where every user could see them in ``ps``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import ipaddress
import json
import os
import re
import socket
import stat
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from pi_secure_ws_protocol.const import DEFAULT_CLIENT_ID, DEFAULT_PORT, Role
from pi_secure_ws_protocol.devices import DeviceInfo, WireModel
from pi_secure_ws_protocol.pinning import normalize_fingerprint

from . import __version__, install_service, pki
from .config import CONFIG_FILE, ConfigError, load_config
from .credentials import CLIENTS_FILE, CredentialError, CredentialStore, validate_client_id
from .fsutil import STATE_DIR_NAME, atomic_write, check_private, ensure_private_dir

PROG: Final = "pi-agent"
PI_MODEL_PATH: Final = Path("/proc/device-tree/model")
SECRET_ENV: Final = "PI_AGENT_SECRET"  # noqa: S105 - a variable name, not a secret
DEBUG_ENV: Final = "PI_AGENT_DEBUG"
RELOAD_HINT: Final = "A running agent applies this on SIGHUP: systemctl reload pi-agent"

# Exit statuses. ctl's are distinct so scripts can tell the failures apart.
EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_CANNOT_CONNECT: Final = 3
EXIT_INVALID_AUTH: Final = 4
EXIT_BLOCKED: Final = 5
EXIT_CERTIFICATE_MISMATCH: Final = 6
EXIT_SERVER_AUTH_FAILED: Final = 7
EXIT_COMMAND_ERROR: Final = 8
EXIT_TIMEOUT: Final = 9
EXIT_PROTOCOL_ERROR: Final = 10
EXIT_INTERRUPTED: Final = 130


class CliError(Exception):
    """A failure to report as one line (each problem on its own line) with an exit status."""

    def __init__(self, message: str | Sequence[str], status: int = EXIT_ERROR) -> None:
        lines = [message] if isinstance(message, str) else list(message)
        super().__init__("\n".join(lines))
        self.lines = lines
        self.status = status


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
    except CliError as err:
        for line in err.lines:
            _err(line)
        return err.status
    except ConfigError as err:
        for problem in err.problems:
            _err(problem)
        return EXIT_ERROR
    except (pki.PkiError, CredentialError) as err:
        _err(str(err))
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        _err(f"{where}{err.strerror or err}")
        return EXIT_ERROR
    except Exception as err:
        if os.environ.get(DEBUG_ENV):
            raise
        _err(f"internal error: {type(err).__name__}: {err} (set {DEBUG_ENV}=1 for details)")
        return EXIT_ERROR


def _err(line: str) -> None:
    print(f"{PROG}: {line}", file=sys.stderr)


def _out(text: str = "") -> None:
    print(text)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


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
    sub.epilog = (
        f"The secret is read from --secret-file or ${SECRET_ENV}, never from the command line. "
        f"Exit status: {EXIT_CANNOT_CONNECT} cannot connect, {EXIT_INVALID_AUTH} invalid auth, "
        f"{EXIT_BLOCKED} blocked, {EXIT_CERTIFICATE_MISMATCH} certificate mismatch, "
        f"{EXIT_SERVER_AUTH_FAILED} agent failed its proof, {EXIT_COMMAND_ERROR} command error, "
        f"{EXIT_TIMEOUT} timeout, {EXIT_PROTOCOL_ERROR} protocol error."
    )
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
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# --- init -----------------------------------------------------------------------------------------


def is_raspberry_pi(model_path: Path = PI_MODEL_PATH) -> bool:
    try:
        return "Raspberry Pi" in model_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def cmd_init(args: argparse.Namespace) -> int:
    config_dir: Path = args.config_dir.expanduser().absolute()
    existing = [
        name
        for name in (CONFIG_FILE, CLIENTS_FILE, pki.CA_KEY_FILE)
        if (config_dir / name).exists()
    ]
    if existing and not args.force:
        raise CliError(
            f"{config_dir} already holds an agent configuration ({', '.join(existing)}); "
            "use --force to replace it (a new CA: every client must pair again)"
        )
    hostname = socket.gethostname() or "raspberrypi"
    host: str = args.host or (hostname if "." in hostname else f"{hostname}.local")
    name: str = args.name or hostname
    hardware = args.hardware
    if hardware == "auto":
        hardware = "gpio" if is_raspberry_pi() else "mock"

    ensure_private_dir(config_dir)
    state_dir = config_dir / STATE_DIR_NAME
    ensure_private_dir(state_dir)
    pictures_dir = state_dir / "pictures"
    if hardware == "mock":
        write_sample_pictures(pictures_dir)

    agent_id = uuid.uuid4().hex
    atomic_write(config_dir / "agent_id", f"{agent_id}\n".encode())
    toml_text = render_agent_toml(
        name=name,
        port=args.port,
        advertise_host=host,
        hardware=hardware,
        pictures_dir=pictures_dir,
        camera_backend=args.camera,
    )
    atomic_write(config_dir / CONFIG_FILE, toml_text.encode())

    hostnames, ip_addresses = _split_hosts([host, hostname])
    fingerprint = pki.write_pki(config_dir, agent_id, hostnames, ip_addresses)

    store = CredentialStore.create(config_dir / CLIENTS_FILE)
    secret = store.add(DEFAULT_CLIENT_ID, Role.CONTROL)
    store.save()

    details = {
        "host": host,
        "port": args.port,
        "fingerprint": fingerprint,
        "client_id": DEFAULT_CLIENT_ID,
        "secret": secret,
        "agent_id": agent_id,
        "name": name,
    }
    if args.json:
        _print_json(details)
        return EXIT_OK
    demo = "demo devices on mock pins" if hardware == "mock" else "device sections commented out"
    _out(f"Initialised {config_dir} (hardware: {hardware}, {demo}).")
    _out()
    _print_secret_details(details, role=Role.CONTROL.label)
    _out()
    _out(f"Check the configuration: {PROG} check-config --config-dir {config_dir}")
    _out(f"Start the agent:         {PROG} run --config-dir {config_dir}")
    return EXIT_OK


SAMPLE_PICTURES: Final = (
    ("sunrise.jpg", (255, 170, 60), (90, 30, 120)),
    ("meadow.jpg", (120, 200, 90), (20, 80, 140)),
    ("ocean.png", (30, 110, 200), (220, 240, 255)),
    ("dusk.jpg", (40, 20, 80), (250, 120, 90)),
)


def write_sample_pictures(folder: Path, size: tuple[int, int] = (800, 480)) -> list[Path]:
    """A few generated pictures for the demo frame (gradients with a caption); existing files
    are left alone so user pictures survive ``init --force``."""
    from PIL import Image, ImageDraw

    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    written = []
    width, height = size
    for index, (filename, top, bottom) in enumerate(SAMPLE_PICTURES, start=1):
        path = folder / filename
        if path.exists():
            continue
        gradient = Image.linear_gradient("L").resize(size)
        image = Image.composite(
            Image.new("RGB", size, bottom), Image.new("RGB", size, top), gradient
        )
        draw = ImageDraw.Draw(image)
        radius = height // 5
        centre = (width * index // (len(SAMPLE_PICTURES) + 1), height // 2)
        draw.ellipse(
            (centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius),
            fill=(255, 255, 255),
        )
        draw.text((20, height - 40), f"pi-agent sample {index}: {path.stem}", fill=(0, 0, 0))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG" if path.suffix == ".png" else "JPEG", quality=85)
        atomic_write(path, buffer.getvalue(), 0o644)
        written.append(path)
    return written


def _split_hosts(hosts: Sequence[str]) -> tuple[list[str], list[str]]:
    names: list[str] = []
    ips: list[str] = []
    for host in hosts:
        try:
            ips.append(str(ipaddress.ip_address(host)))
        except ValueError:
            names.append(host)
    return names, ips


def _print_secret_details(details: Mapping[str, Any], role: str) -> None:
    _out("Pair a client with:")
    for label, key in (
        ("host", "host"),
        ("port", "port"),
        ("fingerprint", "fingerprint"),
        ("client id", "client_id"),
    ):
        if details.get(key) is not None:
            _out(f"  {label + ':':<13}{details[key]}")
    _out(f"  {'role:':<13}{role}")
    _out(f"  {'secret:':<13}{details['secret']}")
    _out()
    _out("The secret is shown only this once: the agent keeps only a verifier of it.")


def _toml_string(value: str) -> str:
    # A JSON string with ASCII escapes is a valid TOML basic string.
    return json.dumps(value)


def render_agent_toml(
    *,
    name: str,
    port: int,
    advertise_host: str,
    hardware: str,
    pictures_dir: Path,
    camera_backend: str | None = None,
) -> str:
    """The documented agent.toml ``init`` writes: demo devices on mock hardware, and the same
    sections commented out on a Pi (its wiring is unknown). On a Pi the camera section names the
    real camera: uncommenting it must not give a test pattern nobody asked for."""
    if camera_backend is None:
        camera_backend = "test_pattern" if hardware == "mock" else "picamera2"
    demo = _DEMO_DEVICES.format(
        pictures=_toml_string(str(pictures_dir)), camera_backend=_toml_string(camera_backend)
    )
    if hardware != "mock":
        demo = "\n".join(f"# {line}" if line else "#" for line in demo.splitlines()) + "\n"
        demo = _PI_DEVICES_INTRO + demo
    return (
        _TEMPLATE.format(
            name=_toml_string(name),
            port=port,
            advertise_host=_toml_string(advertise_host),
            hardware=_toml_string(hardware),
        )
        + demo
    )


_TEMPLATE = """\
# pi-agent configuration: https://github.com/pi-secure-ws/pi_secure_ws
# Check it with `pi-agent check-config --config-dir DIR`, then restart the agent.

[agent]
# Name shown in Home Assistant.
name = {name}
# Address to listen on: "0.0.0.0" every IPv4 interface, "::" IPv6 (and IPv4 where the OS allows).
listen_host = "0.0.0.0"
port = {port}
# The name clients use to reach the agent; it is in the TLS certificate.
# After changing it run `pi-agent renew-cert --config-dir DIR --force`.
advertise_host = {advertise_host}
# "gpio": real pins through gpiozero. "mock": simulated pins, so the agent runs on any Linux box.
hardware = {hardware}
# Persisted state (block list, light levels, frame position); relative to this directory.
state_dir = "state"
# Announce the agent over mDNS (_pi-secure-ws._tcp) so Home Assistant discovers it.
zeroconf = true

[limits]
# Seconds from TCP accept to a completed login; a slower socket is closed, wherever it stalls.
login_timeout = 5.0
# Sockets that have not logged in yet, in total and per source address.
max_unauthenticated = 32
max_unauthenticated_per_source = 4
# Largest frame (bytes) before login; only short text login messages are allowed then.
prelogin_max_frame = 4096
# Largest message (bytes) after login; picture uploads (frame.max_upload_bytes) must fit.
max_message_size = 16777216
# Messages per second per session (bursts of twice that are allowed); a session over the rate
# for flood_close_after seconds is closed.
messages_per_second = 50
flood_close_after = 2.0
# Work a source may do before logging in (a TLS handshake costs 4, a frame 1, a KiB 1): a burst,
# then a refill per second. Going over counts as a failed login.
prelogin_work_burst = 128
prelogin_work_per_second = 16.0
# Largest JSON message after login, and every message of a viewer.
max_text_message = 65536
# Sessions in total and per client (a client's oldest gives way), requests running at once
# per session, and camera streams per session.
max_sessions = 16
max_sessions_per_client = 4
max_in_flight = 16
max_streams_per_session = 4
# Calls that decode, encode or start a pipeline (thumbnails, snapshots, stream starts, uploads)
# per client over all its sessions: a burst, then a refill per second; more get rate_limited.
costly_calls_burst = 4
costly_calls_per_second = 2.0
# Bytes the agent may hold at once for peers (messages being answered, picture decodes); work
# that would go over it is refused. Keeps the agent's peak memory bounded whatever peers send.
memory_budget = 134217728
# Log lines about peers: a burst, then a refill per second, overall and per source.
log_burst = 40
log_lines_per_second = 1.0
log_burst_per_source = 10

[blocklist]
# After this many failed logins a source address is refused for base_delay seconds,
# doubling on each further failure up to max_delay.
threshold = 5
base_delay = 1.0
max_delay = 900.0
# Seconds without failures after which a source's count is forgotten.
decay = 900.0
# Most source addresses remembered (the oldest are dropped first).
max_entries = 4096
# A blocked source hears "blocked, retry in N s" (one TLS handshake) at most once in this many
# seconds; other tries are dropped before TLS.
remind_every = 5.0

[security]
# Browser origins allowed to open a WebSocket, e.g. ["https://homeassistant.local:8123"].
# Home Assistant sends no Origin; with an empty list every request carrying one is refused.
allowed_origins = []
"""

_PI_DEVICES_INTRO = """
# Devices: uncomment and adapt to your wiring. Pins are BCM numbers; each pin may be used once.
"""

_DEMO_DEVICES = """
# A light on a relay or MOSFET. Pins are BCM numbers; each pin may be used once.
[[light]]
id = "porch"
name = "Porch light"
pin = 17
dimmable = false
# false for relay boards that switch on a low level.
active_high = true
# "off", "on" or "restore" (the state before the agent stopped).
startup = "off"

# A dimmable (PWM) light: brightness 0-255.
[[light]]
id = "garden"
name = "Garden lights"
pin = 18
dimmable = true
active_high = true
startup = "restore"
pwm_frequency = 200

[sprinklers]
# Zones allowed to run at the same time; further runs wait in a queue.
max_concurrent = 1
# No run may be longer than this (seconds), whatever a client asks.
max_run_seconds = 3600
# Seconds between one queued zone stopping and the next starting.
queue_delay = 2.0

# A pump or master valve that runs while any zone runs.
[sprinklers.pump]
name = "Pump"
pin = 25
active_high = true
# type = "pump": the zone valve opens first and the pump starts lead seconds later; at the end
# the pump stops and the valve closes lag seconds later (a pump never pushes against closed
# valves). type = "master_valve": the master opens lead seconds before the zone and closes lag
# seconds after it.
type = "pump"
lead = 1.0
lag = 1.0

[[sprinklers.zone]]
id = "lawn"
name = "Lawn"
pin = 22
default_seconds = 600
max_seconds = 1800
active_high = true

[[sprinklers.zone]]
id = "beds"
name = "Flower beds"
pin = 23
default_seconds = 300
max_seconds = 1200
active_high = true

[[sprinklers.zone]]
id = "hedge"
name = "Hedge"
pin = 24
default_seconds = 300
max_seconds = 1200
active_high = true

[frame]
name = "Picture frame"
# JPEG and PNG pictures, sub-folders included (each sub-folder is an album).
folder = {pictures}
# Seconds per picture. Home Assistant records every picture change: 300 is 288 rows a day.
interval = 300
shuffle = false
# Seconds of crossfade between pictures (0 to cut).
crossfade = 1.0
# Largest picture a client may upload (bytes).
max_upload_bytes = 10485760

[camera]
name = "Camera"
# "picamera2": the Pi's camera (without python3-picamera2 or a connected camera, the camera
# reports what is missing); "test_pattern": generated pictures, no camera needed; "auto":
# picamera2, or the test pattern with hardware = "mock" when picamera2 is missing.
backend = {camera_backend}
width = 1280
height = 720
# The highest frame rate a client may ask for.
max_fps = 10
jpeg_quality = 80
# Seconds the camera keeps running after its last stream ends, so a client that stops and
# starts streams does not restart it each time (0: stop at once).
stream_linger = 2.0
"""


# --- run, check-config, pairing, renew-cert -------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from .app import run_agent

    return run_agent(args.config_dir.expanduser().absolute(), args.log_level)


def cmd_safe_off(args: argparse.Namespace) -> int:
    from . import safe_off

    return safe_off.run(args.config_dir)


def cmd_check(args: argparse.Namespace) -> int:
    config_dir: Path = args.config_dir.expanduser().absolute()
    if not config_dir.is_dir():
        raise CliError(f"{config_dir}: no such directory (run `{PROG} init --config-dir DIR`)")
    problems: list[str] = []
    state_dir: Path | None = None
    try:
        config = load_config(config_dir)
        state_dir = config.agent.state_dir
    except ConfigError as err:
        problems.extend(err.problems)
    problems.extend(check_private(config_dir, state_dir))
    problems.extend(_check_pki(config_dir))
    try:
        CredentialStore.load(config_dir / CLIENTS_FILE)
    except CredentialError as err:
        problems.append(str(err))
    if problems:
        for problem in problems:
            _err(problem)
        return EXIT_ERROR
    _out("configuration OK")
    return EXIT_OK


def _check_pki(config_dir: Path) -> list[str]:
    try:
        pki.ca_fingerprint(config_dir)
        pki.load_ca_key(config_dir)
        info = pki.leaf_info(config_dir)
        pki.load_leaf_key(config_dir)
        pki.server_ssl_context(config_dir)
    except pki.PkiError as err:
        return [str(err)]
    if info.not_after <= pki._now():
        return [
            f"{config_dir / pki.LEAF_CERT_FILE}: expired on {info.not_after:%Y-%m-%d}; "
            f"run `{PROG} renew-cert --config-dir {config_dir}`"
        ]
    return []


def _pairing_host(config_dir: Path, advertise_host: str | None) -> str:
    if advertise_host:
        return advertise_host
    try:
        names = [n for n in pki.leaf_info(config_dir).hostnames if n != "localhost"]
    except pki.PkiError:
        names = []
    return names[0] if names else socket.gethostname()


def cmd_pairing(args: argparse.Namespace) -> int:
    config_dir: Path = args.config_dir.expanduser().absolute()
    config = load_config(config_dir)
    store = CredentialStore.load(config_dir / CLIENTS_FILE)
    details = {
        "host": _pairing_host(config_dir, config.agent.advertise_host),
        "port": config.agent.port,
        "fingerprint": pki.ca_fingerprint(config_dir),
        "agent_id": config.agent_id,
        "name": config.agent.name,
        "clients": [{"client_id": c.client_id, "role": c.role.label} for c in store.clients()],
    }
    if args.json:
        _print_json(details)
        return EXIT_OK
    _out(f"{'name:':<13}{details['name']}")
    _out(f"{'host:':<13}{details['host']}")
    _out(f"{'port:':<13}{details['port']}")
    _out(f"{'fingerprint:':<13}{details['fingerprint']}")
    _out(f"{'agent id:':<13}{details['agent_id']}")
    _out("clients:")
    for client in store.clients():
        _out(f"  {client.client_id} ({client.role.label})")
    if not len(store):
        _out(f"  none (add one with `{PROG} client add NAME --role control`)")
    return EXIT_OK


def cmd_renew(args: argparse.Namespace) -> int:
    config_dir: Path = args.config_dir.expanduser().absolute()
    config = load_config(config_dir)
    hosts = [config.agent.advertise_host] if config.agent.advertise_host else []
    names, ips = _split_hosts(hosts)
    renewed = pki.renew_leaf_if_needed(
        config_dir, hostnames=names, ip_addresses=ips, force=args.force
    )
    until = f"{pki.leaf_info(config_dir).not_after:%Y-%m-%d}"
    if renewed:
        _out(f"Certificate renewed, valid until {until}; the CA and pairings are unchanged.")
        _out("Restart the agent to use it: systemctl restart pi-agent")
    else:
        _out(f"Certificate valid until {until}; not renewed (use --force to renew anyway).")
    return EXIT_OK


# --- client ---------------------------------------------------------------------------------------


def _store(args: argparse.Namespace) -> CredentialStore:
    return CredentialStore.load(args.config_dir.expanduser().absolute() / CLIENTS_FILE)


def _connection_details(config_dir: Path) -> dict[str, Any]:
    """Host, port and fingerprint for the output of add/rotate; best effort, so a config typo
    does not stop client management."""
    details: dict[str, Any] = {}
    try:
        config = load_config(config_dir)
        details["host"] = _pairing_host(config_dir, config.agent.advertise_host)
        details["port"] = config.agent.port
    except ConfigError:
        pass
    with contextlib.suppress(pki.PkiError):
        details["fingerprint"] = pki.ca_fingerprint(config_dir)
    return details


def _report_secret(args: argparse.Namespace, client_id: str, role: Role, secret: str) -> None:
    details = {
        **_connection_details(args.config_dir.expanduser().absolute()),
        "client_id": client_id,
        "role": role.label,
        "secret": secret,
    }
    if args.json:
        _print_json(details)
        print(RELOAD_HINT, file=sys.stderr)
        return
    _print_secret_details(details, role=role.label)
    _out(RELOAD_HINT)


def cmd_client_add(args: argparse.Namespace) -> int:
    client_id = validate_client_id(args.client_id)
    role = Role.parse(args.role)
    store = _store(args)
    secret = store.add(client_id, role)
    store.save()
    _report_secret(args, client_id, role, secret)
    return EXIT_OK


def cmd_client_rotate(args: argparse.Namespace) -> int:
    store = _store(args)
    secret = store.rotate(args.client_id)
    store.save()
    record = store.get(args.client_id)
    assert record is not None
    _report_secret(args, args.client_id, record.role, secret)
    return EXIT_OK


def cmd_client_remove(args: argparse.Namespace) -> int:
    store = _store(args)
    store.remove(args.client_id)
    store.save()
    _out(f"Removed client {args.client_id}.")
    _out(RELOAD_HINT)
    return EXIT_OK


def cmd_client_list(args: argparse.Namespace) -> int:
    clients = _store(args).clients()
    if args.json:
        _print_json(
            [
                {"client_id": c.client_id, "role": c.role.label, "created": c.created.isoformat()}
                for c in clients
            ]
        )
        return EXIT_OK
    if not clients:
        _out(f"No clients (add one with `{PROG} client add NAME --role control`).")
    for client in clients:
        _out(f"{client.client_id:<24} {client.role.label:<8} created {client.created:%Y-%m-%d}")
    return EXIT_OK


# --- ctl ------------------------------------------------------------------------------------------


def read_secret(secret_file: Path | None) -> str:
    """The secret from a file or the environment; never from argv (visible in ``ps``)."""
    if secret_file is not None:
        path = secret_file.expanduser()
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise CliError(f"{path}: secret file not found") from None
        except (OSError, UnicodeDecodeError) as err:
            raise CliError(f"{path}: cannot read the secret file: {err}") from None
        if mode & 0o077:
            _err(f"warning: {path} is readable by others; fix with: chmod 600 {path}")
        if not text:
            raise CliError(f"{path}: secret file is empty")
        return text
    text = os.environ.get(SECRET_ENV, "").strip()
    if not text:
        raise CliError(
            f"no secret: pass --secret-file PATH or set {SECRET_ENV} (never on the command line)",
            EXIT_USAGE,
        )
    return text


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value that parses as JSON is used as such (``5``, ``true``,
    ``[1,2]``), anything else is a string."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"invalid parameter {item!r}: expected key=value", EXIT_USAGE)
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def _jsonable(value: Any) -> Any:
    if isinstance(value, WireModel | DeviceInfo):  # the protocol's typed devices: as sent
        return value.to_wire()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def cmd_ctl(args: argparse.Namespace) -> int:
    secret = read_secret(args.secret_file)
    params = parse_params(args.params) if args.ctl_command == "call" else {}
    try:
        return asyncio.run(_ctl(args, secret, params))
    except KeyboardInterrupt:
        return EXIT_OK if args.ctl_command == "watch" else EXIT_INTERRUPTED


async def _ctl(args: argparse.Namespace, secret: str, params: dict[str, Any]) -> int:
    from pi_secure_ws_protocol import errors
    from pi_secure_ws_protocol.client import AgentClient, Disconnected, StateChanged

    client = AgentClient(
        args.host,
        args.port,
        client_id=args.client_id,
        secret=secret,
        fingerprint=args.fingerprint,
    )
    try:
        hello = await client.connect()
        if args.ctl_command == "state":
            _print_json({"devices": _jsonable(hello.devices), "states": _jsonable(hello.states)})
            return EXIT_OK
        if args.ctl_command == "call":
            result = await client.call(args.device, args.action, params)
            return _print_call_result(result, args.output)
        # watch: the current states, then one JSON line per change until the agent goes away.
        finished: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

        def on_event(event: object) -> None:
            if isinstance(event, StateChanged):
                print(json.dumps({"device": event.device, "state": _jsonable(event.state)}))
                sys.stdout.flush()
            elif isinstance(event, Disconnected) and not finished.done():
                finished.set_result(event.error)

        client.add_listener(on_event)
        for device, state in _jsonable(hello.states).items():
            print(json.dumps({"device": device, "state": state}))
        sys.stdout.flush()
        error = await finished
        reason = f": {error}" if error else ""
        raise CliError(f"the agent closed the connection{reason}", EXIT_CANNOT_CONNECT)
    except errors.Blocked as err:
        raise CliError(
            f"blocked by the agent after failed logins; retry in {err.retry_after:.0f} s",
            EXIT_BLOCKED,
        ) from None
    except errors.InvalidAuth:
        raise CliError(
            f"invalid auth: the agent refused client id {args.client_id!r} with this secret",
            EXIT_INVALID_AUTH,
        ) from None
    except errors.CertificateMismatch as err:
        raise CliError(str(err), EXIT_CERTIFICATE_MISMATCH) from None
    except errors.ServerAuthFailed:
        raise CliError(
            "the agent failed to prove it knows this client's verifier: not the real agent",
            EXIT_SERVER_AUTH_FAILED,
        ) from None
    except errors.CannotConnect as err:
        raise CliError(
            f"cannot connect to {args.host}:{args.port}: {err}", EXIT_CANNOT_CONNECT
        ) from None
    except errors.CommandError as err:
        raise CliError(f"command failed: {err}", EXIT_COMMAND_ERROR) from None
    except errors.RequestTimeout:
        raise CliError("the agent did not answer in time", EXIT_TIMEOUT) from None
    except errors.ProtocolError as err:
        raise CliError(f"protocol error: {err}", EXIT_PROTOCOL_ERROR) from None
    except errors.PiSecureWsError as err:
        raise CliError(str(err), EXIT_ERROR) from None
    finally:
        await client.close()


def _print_call_result(result: Any, output: Path | None) -> int:
    data = getattr(result, "data", result)
    if isinstance(data, bytes | bytearray):
        if output is None:
            raise CliError(f"binary result ({len(data)} bytes): pass --output FILE to save it")
        output.write_bytes(data)
        _out(f"wrote {len(data)} bytes to {output}")
        return EXIT_OK
    _print_json(_jsonable(result))
    return EXIT_OK
