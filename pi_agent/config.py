"""Loading and validating ``agent.toml`` (see docs/architecture.md for the layout).

Every problem is collected and reported at once as ``"<key path>: <what is wrong>"``: the agent
refuses to start on a bad config rather than guessing.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import voluptuous as vol

if TYPE_CHECKING:
    from .devices import DeviceModule

CONFIG_FILE: Final = "agent.toml"
AGENT_ID_FILE: Final = "agent_id"
UPLOAD_HEADER_ROOM: Final = 4096 + 2  # binary frame header (pi_secure_ws_protocol.binary)

Hardware = Literal["mock", "gpio"]


class ConfigError(Exception):
    """The configuration is unusable. ``problems`` holds one ``"key.path: problem"`` per issue."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class AgentSection:
    name: str
    listen_host: str
    port: int
    advertise_host: str | None
    hardware: Hardware
    state_dir: Path  # absolute
    zeroconf: bool = True  # advertise over mDNS so Home Assistant discovers the agent


@dataclass(frozen=True)
class Limits:
    """Every budget a peer can spend, in one place (docs/security.md has the table)."""

    # Before login, per source address and in total.
    login_timeout: float = 5.0
    max_unauthenticated: int = 32
    max_unauthenticated_per_source: int = 4
    prelogin_max_frame: int = 4096
    # Work units (a TLS handshake costs 4, a frame or a ping 1, a KiB received 1): a burst, then
    # a refill a second. Going over aborts the socket and counts as a failed login.
    prelogin_work_burst: int = 128
    prelogin_work_per_second: float = 16.0
    # After login.
    max_message_size: int = 16 * 1024 * 1024  # binary uploads, only for roles that may upload
    max_text_message: int = 64 * 1024  # JSON messages, and every frame of a viewer
    messages_per_second: float = 50.0
    flood_close_after: float = 2.0  # seconds over the rate before 1008
    max_in_flight: int = 16  # concurrent requests per session
    max_sessions: int = 16
    max_sessions_per_client: int = 4
    max_streams_per_session: int = 4
    # Calls that decode, encode or start a pipeline (thumbnails, snapshots, stream starts,
    # uploads), per client id over all its sessions: a burst, then a refill a second.
    costly_calls_burst: int = 4
    costly_calls_per_second: float = 2.0
    # What peers make the agent hold at once (messages being answered, picture decodes).
    memory_budget: int = 128 * 1024 * 1024
    # Log lines about peers: a burst, then a refill a second, overall and per source.
    log_burst: int = 40
    log_lines_per_second: float = 1.0
    log_burst_per_source: int = 10


@dataclass(frozen=True)
class BlocklistSettings:
    threshold: int = 5
    base_delay: float = 1.0
    max_delay: float = 900.0
    decay: float = 900.0
    max_entries: int = 4096
    remind_every: float = 5.0


@dataclass(frozen=True)
class Security:
    allowed_origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentConfig:
    config_dir: Path
    agent_id: str
    agent: AgentSection
    limits: Limits
    blocklist: BlocklistSettings
    security: Security
    # Validated device sections keyed by each module's CONFIG_KEY; absent sections are left out.
    devices: dict[str, Any] = field(default_factory=dict)


# --- validators -----------------------------------------------------------------------------------


def _number(minimum: float | None = None, maximum: float | None = None) -> Callable[[Any], float]:
    """A TOML int or float (not a bool, not a string) within bounds, as float."""

    def validate(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise vol.Invalid("expected a number")
        if minimum is not None and value < minimum:
            raise vol.Invalid(f"must be at least {minimum:g}")
        if maximum is not None and value > maximum:
            raise vol.Invalid(f"must be at most {maximum:g}")
        return float(value)

    return validate


def _positive_number(maximum: float | None = None) -> Callable[[Any], float]:
    base = _number(maximum=maximum)

    def validate(value: Any) -> float:
        number = base(value)
        if number <= 0:
            raise vol.Invalid("must be greater than 0")
        return number

    return validate


def _integer(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid("expected an integer")
        if value < minimum:
            raise vol.Invalid(f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise vol.Invalid(f"must be at most {maximum}")
        return value

    return validate


def _text(max_length: int = 255) -> Callable[[Any], str]:
    def validate(value: Any) -> str:
        if not isinstance(value, str):
            raise vol.Invalid("expected a string")
        if not value.strip():
            raise vol.Invalid("must not be empty")
        if len(value) > max_length:
            raise vol.Invalid(f"must be at most {max_length} characters")
        return value

    return validate


_HOST = re.compile(r"^[A-Za-z0-9_.:%-]+$")


def _host(value: Any) -> str:
    text = _text(253)(value)
    if not _HOST.match(text):
        raise vol.Invalid(f"{text!r} is not a host name or IP address")
    return text


_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")


def _origin(value: Any) -> str:
    text = _text(255)(value)
    if not _ORIGIN.match(text):
        raise vol.Invalid(f"{text!r} is not an origin like https://homeassistant.local:8123")
    return text


def _section(schema: dict[Any, Any]) -> vol.Schema:
    # Absent section = all defaults; unknown keys are errors (a typo must not be ignored).
    return vol.Schema(schema, extra=vol.PREVENT_EXTRA)


AGENT_SCHEMA: Final = _section(
    {
        vol.Optional("name", default="Pi agent"): _text(64),
        vol.Optional("listen_host", default="0.0.0.0"): _host,  # noqa: S104 - the agent serves the LAN
        vol.Optional("port", default=8765): _integer(1, 65535),
        vol.Optional("advertise_host"): _host,
        vol.Optional("hardware", default="gpio"): vol.In(
            ["mock", "gpio"], msg="expected 'mock' or 'gpio'"
        ),
        vol.Optional("state_dir", default="state"): _text(4096),
        vol.Optional("zeroconf", default=True): bool,
    }
)
LIMITS_SCHEMA: Final = _section(
    {
        vol.Optional("login_timeout", default=5.0): _positive_number(3600),
        vol.Optional("max_unauthenticated", default=32): _integer(1, 65535),
        vol.Optional("max_unauthenticated_per_source", default=4): _integer(1, 65535),
        vol.Optional("prelogin_max_frame", default=4096): _integer(1024, 65536),
        vol.Optional("max_message_size", default=16 * 1024 * 1024): _integer(
            4096, 256 * 1024 * 1024
        ),
        vol.Optional("messages_per_second", default=50.0): _positive_number(100000),
        vol.Optional("prelogin_work_burst", default=128): _integer(16, 1_000_000),
        vol.Optional("prelogin_work_per_second", default=16.0): _positive_number(1_000_000),
        vol.Optional("max_text_message", default=64 * 1024): _integer(4096, 16 * 1024 * 1024),
        vol.Optional("flood_close_after", default=2.0): _positive_number(3600),
        vol.Optional("max_in_flight", default=16): _integer(1, 1024),
        vol.Optional("max_sessions", default=16): _integer(1, 4096),
        vol.Optional("max_sessions_per_client", default=4): _integer(1, 4096),
        vol.Optional("max_streams_per_session", default=4): _integer(1, 256),
        vol.Optional("costly_calls_burst", default=4): _integer(1, 10_000),
        vol.Optional("costly_calls_per_second", default=2.0): _positive_number(10_000),
        vol.Optional("memory_budget", default=128 * 1024 * 1024): _integer(
            1024 * 1024, 64 * 1024 * 1024 * 1024
        ),
        vol.Optional("log_burst", default=40): _integer(1, 1_000_000),
        vol.Optional("log_lines_per_second", default=1.0): _positive_number(100000),
        vol.Optional("log_burst_per_source", default=10): _integer(1, 1_000_000),
    }
)
BLOCKLIST_SCHEMA: Final = _section(
    {
        vol.Optional("threshold", default=5): _integer(1, 1000),
        vol.Optional("base_delay", default=1.0): _positive_number(86400),
        vol.Optional("max_delay", default=900.0): _positive_number(7 * 86400),
        vol.Optional("decay", default=900.0): _positive_number(30 * 86400),
        vol.Optional("max_entries", default=4096): _integer(1, 1_000_000),
        vol.Optional("remind_every", default=5.0): _positive_number(86400),
    }
)
SECURITY_SCHEMA: Final = _section(
    {vol.Optional("allowed_origins", default=list): vol.All(list, [_origin])}
)
CORE_SCHEMAS: Final[dict[str, vol.Schema]] = {
    "agent": AGENT_SCHEMA,
    "limits": LIMITS_SCHEMA,
    "blocklist": BLOCKLIST_SCHEMA,
    "security": SECURITY_SCHEMA,
}


# --- loading ---------------------------------------------------------------------------------


def load_config(
    config_dir: Path, device_modules: Sequence[DeviceModule] | None = None
) -> AgentConfig:
    """Read ``config_dir/agent.toml`` and ``config_dir/agent_id``; raise ConfigError listing every
    problem. ``device_modules`` defaults to :data:`pi_agent.devices.DEVICE_MODULES`."""
    if device_modules is None:
        from .devices import DEVICE_MODULES

        device_modules = DEVICE_MODULES
    problems: list[str] = []
    raw = _read_toml(config_dir / CONFIG_FILE)
    agent_id = _read_agent_id(config_dir / AGENT_ID_FILE, problems)

    modules = {module.CONFIG_KEY: module for module in device_modules}
    for key in raw:
        if key not in CORE_SCHEMAS and key not in modules:
            known = ", ".join([*CORE_SCHEMAS, *modules])
            problems.append(f"{key}: unknown section (known: {known})")

    core: dict[str, dict[str, Any]] = {}
    for key, schema in CORE_SCHEMAS.items():
        validated = _validate(schema, raw.get(key, {}), key, problems)
        core[key] = validated if validated is not None else schema({})

    devices: dict[str, Any] = {}
    for key, module in modules.items():
        if key in raw:
            validated = _validate(module.CONFIG_SCHEMA, raw[key], key, problems)
            if validated is not None:
                devices[key] = validated

    _check_blocklist(core["blocklist"], problems)
    _check_pins(modules, devices, problems)
    _check_device_ids(modules, devices, problems)
    _check_upload_fits(core["limits"], devices, problems)
    if problems:
        raise ConfigError(problems)

    agent = core["agent"]
    state_dir = Path(agent["state_dir"]).expanduser()
    if not state_dir.is_absolute():
        state_dir = config_dir / state_dir
    return AgentConfig(
        config_dir=config_dir,
        agent_id=agent_id,
        agent=AgentSection(
            name=agent["name"],
            listen_host=agent["listen_host"],
            port=agent["port"],
            advertise_host=agent.get("advertise_host"),
            hardware=agent["hardware"],
            state_dir=state_dir,
            zeroconf=agent["zeroconf"],
        ),
        limits=Limits(**core["limits"]),
        blocklist=BlocklistSettings(**core["blocklist"]),
        security=Security(allowed_origins=tuple(core["security"]["allowed_origins"])),
        devices=devices,
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            [f"{path.name}: missing in {path.parent} (run `pi-agent init`)"]
        ) from None
    except OSError as err:
        raise ConfigError([f"{path.name}: cannot read: {err.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path.name}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as err:
        # The message carries the position: "Expected '=' after a key (at line 3, column 7)".
        raise ConfigError([f"{path.name}: TOML syntax error: {err}"]) from None


_AGENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _read_agent_id(path: Path, problems: list[str]) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        problems.append(f"{path.name}: missing in {path.parent} (run `pi-agent init`)")
        return ""
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{path.name}: cannot read: {getattr(err, 'strerror', None) or err}")
        return ""
    if not _AGENT_ID.match(text):
        problems.append(f"{path.name}: expected 1-64 letters, digits, '-' or '_'")
    return text


def format_path(prefix: str, path: Sequence[Any]) -> str:
    """``("light", 1, "pin")`` -> ``light[1].pin``."""
    text = prefix
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _validate(schema: vol.Schema, value: Any, prefix: str, problems: list[str]) -> Any:
    try:
        return schema(value)
    except vol.MultipleInvalid as err:
        for one in err.errors:
            problems.append(f"{format_path(prefix, one.path)}: {one.error_message}")
    except vol.Invalid as err:
        problems.append(f"{format_path(prefix, err.path)}: {err.error_message}")
    return None


def _check_blocklist(blocklist: dict[str, Any], problems: list[str]) -> None:
    if blocklist["max_delay"] < blocklist["base_delay"]:
        problems.append("blocklist.max_delay: must be at least blocklist.base_delay")


def _qualify(key: str, path: str) -> str:
    """Module key paths may or may not start with their section key; report them with it."""
    if path == key or path.startswith((f"{key}.", f"{key}[")):
        return path
    return f"{key}{path}" if path.startswith("[") else f"{key}.{path}"


def _check_upload_fits(
    limits: dict[str, Any], devices: dict[str, Any], problems: list[str]
) -> None:
    """A picture upload travels in one message: a cap below it would close the session."""
    frame = devices.get("frame")
    if not isinstance(frame, dict) or "max_upload_bytes" not in frame:
        return
    needed = frame["max_upload_bytes"] + UPLOAD_HEADER_ROOM
    if limits["max_message_size"] < needed:
        problems.append(
            f"limits.max_message_size: {limits['max_message_size']} is smaller than an upload of "
            f"frame.max_upload_bytes ({frame['max_upload_bytes']}) plus its header; "
            f"make it at least {needed}"
        )
    # Held twice while it is handled (its frame and its payload): a budget below that refuses
    # every upload of the largest allowed size.
    if limits["memory_budget"] < 2 * needed:
        problems.append(
            f"limits.memory_budget: {limits['memory_budget']} cannot hold an upload of "
            f"frame.max_upload_bytes ({frame['max_upload_bytes']}) while it is handled; "
            f"make it at least {2 * needed}"
        )


def _check_pins(
    modules: dict[str, DeviceModule], devices: dict[str, Any], problems: list[str]
) -> None:
    owners: dict[int, str] = {}
    for key, section in devices.items():
        for path, pin in modules[key].used_pins(section):
            where = _qualify(key, path)
            if pin in owners:
                problems.append(f"{where}: BCM pin {pin} is already used by {owners[pin]}")
            else:
                owners[pin] = where


def _check_device_ids(
    modules: dict[str, DeviceModule], devices: dict[str, Any], problems: list[str]
) -> None:
    """Device ids are unique across modules: a list section (``[[light]]``) makes one device per
    entry, named by its ``id``; any other section is one device with its module's ``DEVICE_ID``."""
    owners: dict[str, str] = {"system": "the system device"}
    listed: list[tuple[str, str]] = []
    for key, section in devices.items():
        if isinstance(section, list):
            for index, entry in enumerate(section):
                if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
                    listed.append((f"{key}[{index}].id", entry["id"]))
        else:
            device_id = str(getattr(modules[key], "DEVICE_ID", key))
            owners.setdefault(device_id, f"the [{key}] device")
    for where, device_id in listed:
        if device_id in owners:
            problems.append(f"{where}: id {device_id!r} is already used by {owners[device_id]}")
        else:
            owners[device_id] = where
