"""Loading and validating ``agent.toml`` (see docs/architecture.md for the layout).

Every problem is collected and reported at once as ``"<key path>: <what is wrong>"``: the agent
refuses to start on a bad config rather than guessing.

Config knows the core sections only. The device sections, and the checks across them (a pin
used twice, an upload larger than a message), come from the device registry the caller hands in
(:data:`pi_agent.devices.registry.REGISTRY`), so this module imports no device.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import voluptuous as vol

from .errors import ConfigError as ConfigError  # noqa: PLC0414 - re-exported for callers
from .validators import host, integer, origin, positive_number, section, text, validate

CONFIG_FILE: Final = "agent.toml"
AGENT_ID_FILE: Final = "agent_id"

Hardware = Literal["mock", "gpio"]


def _setting(default: Any, check: Callable[[Any], Any]) -> Any:
    """A settings field: its default and its validator, written once (the schema is derived)."""
    return field(default=default, metadata={"check": check})


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
    login_timeout: float = _setting(5.0, positive_number(3600))
    max_unauthenticated: int = _setting(32, integer(1, 65535))
    max_unauthenticated_per_source: int = _setting(4, integer(1, 65535))
    prelogin_max_frame: int = _setting(4096, integer(1024, 65536))
    # Work units (a TLS handshake costs 4, a frame or a ping 1, a KiB received 1): a burst, then
    # a refill a second. Going over aborts the socket and counts as a failed login.
    prelogin_work_burst: int = _setting(128, integer(16, 1_000_000))
    prelogin_work_per_second: float = _setting(16.0, positive_number(1_000_000))
    # After login. Binary uploads, only for roles that may upload:
    max_message_size: int = _setting(16 * 1024 * 1024, integer(4096, 256 * 1024 * 1024))
    # JSON messages, and every frame of a viewer.
    max_text_message: int = _setting(64 * 1024, integer(4096, 16 * 1024 * 1024))
    messages_per_second: float = _setting(50.0, positive_number(100000))
    flood_close_after: float = _setting(2.0, positive_number(3600))  # seconds over, then 1008
    max_in_flight: int = _setting(16, integer(1, 1024))  # concurrent requests per session
    max_sessions: int = _setting(16, integer(1, 4096))
    max_sessions_per_client: int = _setting(4, integer(1, 4096))
    max_streams_per_session: int = _setting(4, integer(1, 256))
    # Calls that decode, encode or start a pipeline (thumbnails, snapshots, stream starts,
    # uploads), per client id over all its sessions: a burst, then a refill a second.
    costly_calls_burst: int = _setting(4, integer(1, 10_000))
    costly_calls_per_second: float = _setting(2.0, positive_number(10_000))
    # What peers make the agent hold at once (messages being answered, picture decodes).
    memory_budget: int = _setting(128 * 1024 * 1024, integer(1024 * 1024, 64 * 1024**3))
    # Log lines about peers: a burst, then a refill a second, overall and per source.
    log_burst: int = _setting(40, integer(1, 1_000_000))
    log_lines_per_second: float = _setting(1.0, positive_number(100000))
    log_burst_per_source: int = _setting(10, integer(1, 1_000_000))


@dataclass(frozen=True)
class BlocklistSettings:
    threshold: int = _setting(5, integer(1, 1000))
    base_delay: float = _setting(1.0, positive_number(86400))
    max_delay: float = _setting(900.0, positive_number(7 * 86400))
    decay: float = _setting(900.0, positive_number(30 * 86400))
    max_entries: int = _setting(4096, integer(1, 1_000_000))
    remind_every: float = _setting(5.0, positive_number(86400))


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


class DeviceSections(Protocol):
    """What config needs of the device registry (pi_agent.devices.registry.DeviceRegistry)."""

    def schemas(self) -> Mapping[str, vol.Schema]:
        """Each device section's schema, by its top-level key."""
        ...

    def check(self, sections: Mapping[str, Any], limits: Limits) -> list[str]:
        """The problems across the validated sections (pins, ids, what the limits must fit)."""
        ...


# --- schemas --------------------------------------------------------------------------------------


def settings_schema(settings: type[Any]) -> vol.Schema:
    """The schema of a settings dataclass: every field optional, with its default and check."""
    return section(
        {
            vol.Optional(one.name, default=one.default): one.metadata["check"]
            for one in dataclasses.fields(settings)
        }
    )


AGENT_SCHEMA: Final = section(
    {
        vol.Optional("name", default="Pi agent"): text(64),
        vol.Optional("listen_host", default="0.0.0.0"): host,  # noqa: S104 - the agent serves the LAN
        vol.Optional("port", default=8765): integer(1, 65535),
        vol.Optional("advertise_host"): host,
        vol.Optional("hardware", default="gpio"): vol.In(
            ["mock", "gpio"], msg="expected 'mock' or 'gpio'"
        ),
        vol.Optional("state_dir", default="state"): text(4096),
        vol.Optional("zeroconf", default=True): bool,
    }
)
LIMITS_SCHEMA: Final = settings_schema(Limits)
BLOCKLIST_SCHEMA: Final = settings_schema(BlocklistSettings)
SECURITY_SCHEMA: Final = section(
    {vol.Optional("allowed_origins", default=list): vol.All(list, [origin])}
)
CORE_SCHEMAS: Final[dict[str, vol.Schema]] = {
    "agent": AGENT_SCHEMA,
    "limits": LIMITS_SCHEMA,
    "blocklist": BLOCKLIST_SCHEMA,
    "security": SECURITY_SCHEMA,
}


# --- loading ---------------------------------------------------------------------------------


def load_config(config_dir: Path, devices: DeviceSections) -> AgentConfig:
    """Read ``config_dir/agent.toml`` and ``config_dir/agent_id``; raise ConfigError listing every
    problem. ``devices`` validates the device sections (pi_agent.devices.registry.REGISTRY, or
    an empty registry for the core sections alone)."""
    problems: list[str] = []
    raw = _read_toml(config_dir / CONFIG_FILE)
    agent_id = _read_agent_id(config_dir / AGENT_ID_FILE, problems)

    device_schemas = devices.schemas()
    for key in raw:
        if key not in CORE_SCHEMAS and key not in device_schemas:
            known = ", ".join([*CORE_SCHEMAS, *device_schemas])
            problems.append(f"{key}: unknown section (known: {known})")

    core: dict[str, dict[str, Any]] = {}
    for key, schema in CORE_SCHEMAS.items():
        validated = validate(schema, raw.get(key, {}), key, problems)
        core[key] = validated if validated is not None else schema({})

    sections: dict[str, Any] = {}
    for key, schema in device_schemas.items():
        if key in raw:
            validated = validate(schema, raw[key], key, problems)
            if validated is not None:
                sections[key] = validated

    limits = Limits(**core["limits"])
    blocklist = BlocklistSettings(**core["blocklist"])
    if blocklist.max_delay < blocklist.base_delay:
        problems.append("blocklist.max_delay: must be at least blocklist.base_delay")
    problems.extend(devices.check(sections, limits))
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
        limits=limits,
        blocklist=blocklist,
        security=Security(allowed_origins=tuple(core["security"]["allowed_origins"])),
        devices=sections,
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
        content = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        problems.append(f"{path.name}: missing in {path.parent} (run `pi-agent init`)")
        return ""
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{path.name}: cannot read: {getattr(err, 'strerror', None) or err}")
        return ""
    if not _AGENT_ID.match(content):
        problems.append(f"{path.name}: expected 1-64 letters, digits, '-' or '_'")
    return content
