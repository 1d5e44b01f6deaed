"""The ``system`` kind every agent has: the Pi's health, and restart/reboot for admins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Final, Self

from .wire import Fields, WireModel

DEVICE_ID: Final = "system"  # the system device's fixed id


class SystemAction(StrEnum):
    REFRESH = "refresh"  # viewer
    RESTART_AGENT = "restart_agent"  # admin
    REBOOT = "reboot"  # admin


class SystemSensor(StrEnum):
    """The readings a Pi may have, as ``capabilities.sensors`` lists them."""

    HOSTNAME = "hostname"
    UPTIME = "uptime"
    LOAD = "load"
    DISK = "disk"
    MEMORY = "memory"
    MODEL = "model"
    CPU_TEMPERATURE = "cpu_temperature"
    WIFI = "wifi"
    THROTTLED = "throttled"


@dataclass(frozen=True, kw_only=True, slots=True)
class SystemCapabilities(WireModel):
    WHERE: ClassVar[str] = "system capabilities"

    sensors: tuple[str, ...]  # SystemSensor names; a newer agent may list others
    restart_agent: bool
    reboot: bool
    # The GPIO pin factory in use, for diagnostics: factory, chip, chip_label, found_by, error.
    gpio: Mapping[str, str | None]

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            sensors=fields.strings("sensors"),
            restart_agent=fields.boolean("restart_agent"),
            reboot=fields.boolean("reboot"),
            gpio=fields.scalar_mapping("gpio"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "sensors": list(self.sensors),
            "restart_agent": self.restart_agent,
            "reboot": self.reboot,
            "gpio": dict(self.gpio),
        }

    def has_sensor(self, sensor: SystemSensor) -> bool:
        return sensor in self.sensors


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadAverage(WireModel):
    WHERE: ClassVar[str] = "load"

    one: float  # "1m"
    five: float  # "5m"
    fifteen: float  # "15m"

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            one=fields.number("1m", 0), five=fields.number("5m", 0), fifteen=fields.number("15m", 0)
        )

    def to_wire(self) -> dict[str, Any]:
        return {"1m": self.one, "5m": self.five, "15m": self.fifteen}


@dataclass(frozen=True, kw_only=True, slots=True)
class DiskUsage(WireModel):
    """The file system of the agent's state directory."""

    WHERE: ClassVar[str] = "disk"

    free_bytes: int
    total_bytes: int
    free_percent: float | None  # None for a file system of size 0

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            free_bytes=fields.integer("free_bytes", 0),
            total_bytes=fields.integer("total_bytes", 0),
            free_percent=fields.optional_number("free_percent"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "free_bytes": self.free_bytes,
            "total_bytes": self.total_bytes,
            "free_percent": self.free_percent,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class MemoryUsage(WireModel):
    WHERE: ClassVar[str] = "memory"

    total_bytes: int
    available_bytes: int
    used_percent: float

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            total_bytes=fields.integer("total_bytes", 0),
            available_bytes=fields.integer("available_bytes", 0),
            used_percent=fields.number("used_percent"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "total_bytes": self.total_bytes,
            "available_bytes": self.available_bytes,
            "used_percent": self.used_percent,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class WifiLink(WireModel):
    WHERE: ClassVar[str] = "wifi"

    interface: str
    link_quality: float
    signal_dbm: float

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            interface=fields.string("interface"),
            link_quality=fields.number("link_quality"),
            signal_dbm=fields.number("signal_dbm"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "interface": self.interface,
            "link_quality": self.link_quality,
            "signal_dbm": self.signal_dbm,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ThrottleFlags(WireModel):
    WHERE: ClassVar[str] = "throttle flags"

    under_voltage: bool
    freq_capped: bool
    throttled: bool
    soft_temp_limit: bool

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            under_voltage=fields.boolean("under_voltage"),
            freq_capped=fields.boolean("freq_capped"),
            throttled=fields.boolean("throttled"),
            soft_temp_limit=fields.boolean("soft_temp_limit"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "under_voltage": self.under_voltage,
            "freq_capped": self.freq_capped,
            "throttled": self.throttled,
            "soft_temp_limit": self.soft_temp_limit,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Throttling(WireModel):
    """The firmware's throttling word: the flags that hold now, and those seen since boot."""

    WHERE: ClassVar[str] = "throttled"

    raw: str  # like "0x50005"
    now: ThrottleFlags
    since_boot: ThrottleFlags

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            raw=fields.string("raw"),
            now=fields.object("now", ThrottleFlags.read),
            since_boot=fields.object("since_boot", ThrottleFlags.read),
        )

    def to_wire(self) -> dict[str, Any]:
        return {"raw": self.raw, "now": self.now.to_wire(), "since_boot": self.since_boot.to_wire()}


@dataclass(frozen=True, kw_only=True, slots=True)
class SystemState(WireModel):
    """Each reading is None where the Pi does not have it (or reading it failed)."""

    WHERE: ClassVar[str] = "system state"

    hostname: str
    model: str | None
    uptime: float | None  # seconds since boot
    cpu_temperature: float | None  # °C
    load: LoadAverage | None
    disk: DiskUsage | None
    memory: MemoryUsage | None
    wifi: WifiLink | None
    throttled: Throttling | None

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            hostname=fields.string("hostname"),
            model=fields.optional_string("model"),
            uptime=fields.optional_number("uptime"),
            cpu_temperature=fields.optional_number("cpu_temperature"),
            load=fields.optional_object("load", LoadAverage.read),
            disk=fields.optional_object("disk", DiskUsage.read),
            memory=fields.optional_object("memory", MemoryUsage.read),
            wifi=fields.optional_object("wifi", WifiLink.read),
            throttled=fields.optional_object("throttled", Throttling.read),
        )

    def to_wire(self) -> dict[str, Any]:
        def wire(part: WireModel | None) -> dict[str, Any] | None:
            return None if part is None else part.to_wire()

        return {
            "hostname": self.hostname,
            "model": self.model,
            "uptime": self.uptime,
            "cpu_temperature": self.cpu_temperature,
            "load": wire(self.load),
            "disk": wire(self.disk),
            "memory": wire(self.memory),
            "wifi": wire(self.wifi),
            "throttled": wire(self.throttled),
        }
