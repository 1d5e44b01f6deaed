"""The ``sprinkler_controller`` kind: zone valves, a pump or master valve, a FIFO queue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Final, Self

from ..errors import ProtocolError
from .wire import ActionParams, Fields, WireModel, iso

DEVICE_ID: Final = "sprinklers"  # the one controller's fixed id


class SprinklerAction(StrEnum):
    RUN = "run"
    STOP = "stop"
    STOP_ALL = "stop_all"
    CLEAR_QUEUE = "clear_queue"
    SET_RAIN_DELAY = "set_rain_delay"
    CLEAR_RAIN_DELAY = "clear_rain_delay"


class RunStatus(StrEnum):
    """What ``run`` did: the valve is open, opens soon (a relay's minimum switch interval), or
    the run waits in the queue."""

    RUNNING = "running"
    STARTING = "starting"
    QUEUED = "queued"


@dataclass(frozen=True, kw_only=True, slots=True)
class Zone(WireModel):
    """One zone as the capabilities declare it."""

    WHERE: ClassVar[str] = "sprinkler zone"

    id: str
    name: str
    default_seconds: float
    max_seconds: float

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            id=fields.string("id"),
            name=fields.string("name"),
            default_seconds=fields.number("default_seconds", 0),
            max_seconds=fields.number("max_seconds", 0),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "default_seconds": self.default_seconds,
            "max_seconds": self.max_seconds,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class SprinklerCapabilities(WireModel):
    WHERE: ClassVar[str] = "sprinkler_controller capabilities"

    zones: tuple[Zone, ...]
    max_concurrent: int
    max_run_seconds: float
    has_pump: bool  # a pump or master valve is configured

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            zones=fields.objects("zones", Zone.read),
            max_concurrent=fields.integer("max_concurrent", 1),
            max_run_seconds=fields.number("max_run_seconds", 0),
            has_pump=fields.boolean("has_pump"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "zones": [zone.to_wire() for zone in self.zones],
            "max_concurrent": self.max_concurrent,
            "max_run_seconds": self.max_run_seconds,
            "has_pump": self.has_pump,
        }

    def zone(self, zone_id: str) -> Zone | None:
        return next((zone for zone in self.zones if zone.id == zone_id), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class ZoneState(WireModel):
    WHERE: ClassVar[str] = "sprinkler zone state"

    open: bool
    remaining: float | None  # seconds; None while the zone has no started run
    ends_at: datetime | None

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            open=fields.boolean("open"),
            remaining=fields.optional_number("remaining"),
            ends_at=fields.optional_moment("ends_at"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {"open": self.open, "remaining": self.remaining, "ends_at": iso(self.ends_at)}


@dataclass(frozen=True, kw_only=True, slots=True)
class QueuedRun(WireModel):
    WHERE: ClassVar[str] = "queued run"

    zone: str
    seconds: float

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(zone=fields.string("zone"), seconds=fields.number("seconds", 0))

    def to_wire(self) -> dict[str, Any]:
        return {"zone": self.zone, "seconds": self.seconds}


@dataclass(frozen=True, kw_only=True, slots=True)
class SprinklerState(WireModel):
    WHERE: ClassVar[str] = "sprinkler_controller state"

    zones: Mapping[str, ZoneState]
    queue: tuple[QueuedRun, ...]  # waiting runs, first first
    running: tuple[str, ...]  # zone ids with a started run
    pump: bool | None  # the pump or master valve relay; None when there is none
    rain_delay_until: datetime | None
    fault: str | None  # why every relay was switched off after a failure

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            zones=fields.mapping("zones", ZoneState.read),
            queue=fields.objects("queue", QueuedRun.read),
            running=fields.strings("running"),
            pump=fields.optional_boolean("pump"),
            rain_delay_until=fields.optional_moment("rain_delay_until"),
            fault=fields.optional_string("fault"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "zones": {zone_id: zone.to_wire() for zone_id, zone in self.zones.items()},
            "queue": [item.to_wire() for item in self.queue],
            "running": list(self.running),
            "pump": self.pump,
            "rain_delay_until": iso(self.rain_delay_until),
            "fault": self.fault,
        }

    def is_queued(self, zone_id: str) -> bool:
        return any(item.zone == zone_id for item in self.queue)


@dataclass(frozen=True, kw_only=True, slots=True)
class RunZone(ActionParams):
    """Run ``zone`` for ``seconds`` (above 0 to 86400; None: the zone's ``default_seconds``)."""

    action: ClassVar[str] = SprinklerAction.RUN
    zone: str
    seconds: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StopZone(ActionParams):
    action: ClassVar[str] = SprinklerAction.STOP
    zone: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SetRainDelay(ActionParams):
    """No run starts before ``until`` (a date-time with a time zone, in the future)."""

    action: ClassVar[str] = SprinklerAction.SET_RAIN_DELAY
    until: datetime

    def to_wire(self) -> dict[str, Any]:
        if self.until.tzinfo is None:
            raise ValueError("a rain delay's end needs a time zone")
        return {"until": iso(self.until)}


@dataclass(frozen=True, kw_only=True, slots=True)
class RunAnswer(WireModel):
    """The answer to ``run``: ``ends_at`` unless queued, ``position`` when queued."""

    WHERE: ClassVar[str] = "run answer"

    zone: str
    seconds: float
    status: RunStatus
    ends_at: datetime | None = None
    position: int | None = None
    capped: bool = False  # the run ends at its limit, sooner than asked

    @classmethod
    def read(cls, fields: Fields) -> Self:
        status = fields.string("status")
        if status not in set(RunStatus):
            raise ProtocolError(f"{fields.where}.status: unknown run status {status!r}")
        queued = status == RunStatus.QUEUED
        return cls(
            zone=fields.string("zone"),
            seconds=fields.number("seconds", 0),
            status=RunStatus(status),
            ends_at=None if queued else fields.optional_moment("ends_at"),
            position=fields.integer("position", 1) if queued else None,
            capped="capped" in fields.data and fields.boolean("capped"),
        )

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"zone": self.zone, "seconds": self.seconds, "status": self.status}
        if self.status is RunStatus.QUEUED:
            wire["position"] = self.position
            return wire
        wire["ends_at"] = iso(self.ends_at)
        if self.capped:
            wire["capped"] = True
        return wire
