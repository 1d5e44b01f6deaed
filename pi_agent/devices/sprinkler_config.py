"""The ``[sprinklers]`` section of agent.toml: its schema and the typed settings built from it.

The schema validates and fills the defaults (voluptuous, errors naming the key); the settings are
what the controller and its scheduler read: frozen dataclasses, with the pump-or-master-valve
choice decided here once, as a :class:`Supply`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import voluptuous as vol
from pi_secure_ws_protocol.devices.sprinklers import SprinklerCapabilities, Zone

from pi_agent.devices.gpio import bcm_pin, boolean, display_name, seconds, slug

CONFIG_KEY: Final = "sprinklers"
MAX_ZONES: Final = 32
# One day: longer than any sensible run, short enough to catch a typo of minutes for seconds.
LONGEST_RUN: Final = 86400.0
DEFAULT_RUN: Final = 600.0


class Supply(enum.Enum):
    """What the relay beside the zone valves is, which decides the order they switch in.

    - ``PUMP``: a pump must never run against closed valves (dead-heading). The zone valve opens
      first and the pump starts ``lead`` seconds later; at the end the pump stops first and the
      last valve closes ``lag`` seconds later, while the pump spins down.
    - ``MASTER_VALVE``: the master valve opens first and the zone valve ``lead`` seconds later; at
      the end the zone valve closes first and the master valve ``lag`` seconds after the last one.
    """

    PUMP = "pump"
    MASTER_VALVE = "master_valve"

    @property
    def default_name(self) -> str:
        return "Pump" if self is Supply.PUMP else "Master valve"


SUPPLY_TYPES: Final = tuple(supply.value for supply in Supply)


def _whole_number(minimum: int, maximum: int) -> Any:
    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid(f"must be a whole number {minimum}-{maximum}, got {value!r}")
        if not minimum <= value <= maximum:
            raise vol.Invalid(f"must be {minimum}-{maximum}, got {value}")
        return value

    return validate


_PUMP_SCHEMA: Final = vol.Schema(
    {
        vol.Required("pin"): bcm_pin,
        vol.Optional("name"): display_name,
        vol.Optional("type", default=Supply.PUMP.value): vol.In(
            SUPPLY_TYPES, msg=f"must be one of: {', '.join(SUPPLY_TYPES)}"
        ),
        vol.Optional("active_high", default=True): boolean,
        vol.Optional("lead", default=1.0): seconds(0.0, 60.0),
        vol.Optional("lag", default=1.0): seconds(0.0, 60.0),
    }
)

_ZONE_SCHEMA: Final = vol.Schema(
    {
        vol.Required("id"): slug,
        vol.Optional("name"): display_name,
        vol.Required("pin"): bcm_pin,
        vol.Optional("default_seconds"): seconds(0.0, LONGEST_RUN, min_included=False),
        vol.Optional("max_seconds"): seconds(0.0, LONGEST_RUN, min_included=False),
        vol.Optional("max_seconds_per_day"): seconds(0.0, LONGEST_RUN, min_included=False),
        vol.Optional("active_high", default=True): boolean,
    }
)


def _check_controller(section: dict[str, Any]) -> dict[str, Any]:
    """Cross-field rules: unique zone ids, and run times within the global cap."""
    global_max = section["max_run_seconds"]
    seen: set[str] = set()
    for index, zone in enumerate(section["zone"]):
        if zone["id"] in seen:
            raise vol.Invalid(
                f"id {zone['id']!r} is used by another zone", path=["zone", index, "id"]
            )
        seen.add(zone["id"])
        zone.setdefault("name", zone["id"])
        zone_max = zone.get("max_seconds", global_max)
        if zone_max > global_max:
            raise vol.Invalid(
                f"{zone_max:g} is above max_run_seconds ({global_max:g})",
                path=["zone", index, "max_seconds"],
            )
        zone.setdefault("default_seconds", min(DEFAULT_RUN, zone_max))
        if zone["default_seconds"] > zone_max:
            limit = "this zone's max_seconds" if "max_seconds" in zone else "max_run_seconds"
            raise vol.Invalid(
                f"{zone['default_seconds']:g} is above {limit} ({zone_max:g})",
                path=["zone", index, "default_seconds"],
            )
    pump = section.get("pump")
    if pump is not None:
        pump.setdefault("name", Supply(pump["type"]).default_name)
    return section


CONFIG_SCHEMA: Final = vol.Schema(
    vol.All(
        {
            vol.Optional("max_concurrent", default=1): _whole_number(1, MAX_ZONES),
            vol.Optional("max_run_seconds", default=3600.0): seconds(
                0.0, LONGEST_RUN, min_included=False
            ),
            vol.Optional("queue_delay", default=0.0): seconds(0.0, 3600.0),
            # Two clients fighting over a zone cannot make its relay chatter: a relay switches
            # on no sooner than this after its last change (off is never delayed).
            vol.Optional("min_switch_interval", default=1.0): seconds(0.0, 60.0),
            vol.Optional("max_seconds_per_day"): seconds(0.0, LONGEST_RUN, min_included=False),
            vol.Optional("pump"): _PUMP_SCHEMA,
            vol.Required("zone"): vol.All(
                [_ZONE_SCHEMA],
                vol.Length(
                    min=1,
                    max=MAX_ZONES,
                    msg=f"needs 1-{MAX_ZONES} [[sprinklers.zone]] tables",
                ),
            ),
        },
        _check_controller,
    )
)


def used_pins(section: Mapping[str, Any]) -> list[tuple[str, int]]:
    pins = [
        (f"sprinklers.zone[{index}].pin", zone["pin"])
        for index, zone in enumerate(section.get("zone", []))
    ]
    if section.get("pump") is not None:
        pins.append(("sprinklers.pump.pin", section["pump"]["pin"]))
    return pins


@dataclass(frozen=True)
class ZoneSettings:
    id: str
    name: str
    pin: int
    active_high: bool
    default_seconds: float
    max_seconds: float
    # Says which limit max_seconds comes from, for the refusal message.
    limit_source: str
    max_seconds_per_day: float | None
    key: str  # the config key of its pin, for error messages

    @property
    def counts_daily(self) -> bool:
        return self.max_seconds_per_day is not None


@dataclass(frozen=True)
class PumpSettings:
    name: str
    pin: int
    active_high: bool
    supply: Supply
    lead: float
    lag: float
    key: str = "sprinklers.pump.pin"


@dataclass(frozen=True)
class ControllerSettings:
    """The whole ``[sprinklers]`` section, validated, defaults filled in."""

    max_concurrent: int
    max_run_seconds: float
    queue_delay: float
    min_switch_interval: float
    zones: Mapping[str, ZoneSettings]  # by id, in config order
    pump: PumpSettings | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> ControllerSettings:
        """Validate ``section`` (idempotent on a validated one) and build the settings."""
        config = CONFIG_SCHEMA(dict(section))
        global_max: float = config["max_run_seconds"]
        zones: dict[str, ZoneSettings] = {}
        for index, zone in enumerate(config["zone"]):
            own_max = zone.get("max_seconds")
            zones[zone["id"]] = ZoneSettings(
                id=zone["id"],
                name=zone["name"],
                pin=zone["pin"],
                active_high=zone["active_high"],
                default_seconds=zone["default_seconds"],
                max_seconds=own_max if own_max is not None else global_max,
                limit_source="its max_seconds"
                if own_max is not None
                else "the controller's max_run_seconds",
                max_seconds_per_day=zone.get(
                    "max_seconds_per_day", config.get("max_seconds_per_day")
                ),
                key=f"sprinklers.zone[{index}].pin",
            )
        pump = config.get("pump")
        return cls(
            max_concurrent=config["max_concurrent"],
            max_run_seconds=global_max,
            queue_delay=config["queue_delay"],
            min_switch_interval=config["min_switch_interval"],
            zones=zones,
            pump=None
            if pump is None
            else PumpSettings(
                name=pump["name"],
                pin=pump["pin"],
                active_high=pump["active_high"],
                supply=Supply(pump["type"]),
                lead=pump["lead"],
                lag=pump["lag"],
            ),
        )

    def capabilities(self) -> SprinklerCapabilities:
        """What a client needs to build its UI."""
        return SprinklerCapabilities(
            zones=tuple(
                Zone(
                    id=zone.id,
                    name=zone.name,
                    default_seconds=zone.default_seconds,
                    max_seconds=zone.max_seconds,
                )
                for zone in self.zones.values()
            ),
            max_concurrent=self.max_concurrent,
            max_run_seconds=self.max_run_seconds,
            has_pump=self.pump is not None,
        )

    @property
    def supply(self) -> Supply | None:
        return None if self.pump is None else self.pump.supply

    @property
    def lead(self) -> float:
        return 0.0 if self.pump is None else self.pump.lead

    @property
    def lag(self) -> float:
        return 0.0 if self.pump is None else self.pump.lag


def parse_until(value: Any) -> datetime:
    """A rain delay's end: an ISO 8601 date-time with a time zone, or seconds since the epoch."""
    if isinstance(value, bool):
        raise vol.Invalid("must be an ISO 8601 date-time with a time zone, or epoch seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise vol.Invalid("must be a finite number of epoch seconds")
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError) as err:
            raise vol.Invalid(f"epoch seconds out of range: {value!r}") from err
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as err:
            raise vol.Invalid(f"not an ISO 8601 date-time: {value!r}") from err
        if parsed.tzinfo is None:
            raise vol.Invalid(
                f"{value!r} has no time zone; add one, e.g. 2025-06-01T06:00:00+02:00 or ...Z"
            )
        return parsed.astimezone(UTC)
    raise vol.Invalid("must be an ISO 8601 date-time with a time zone, or epoch seconds")


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds")
