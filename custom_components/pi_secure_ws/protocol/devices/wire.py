"""Reading a device's wire object field by field: every wrong value is a ProtocolError naming it.

The agent's JSON decoder already refuses what JSON cannot hold (``NaN``, huge numbers); this layer
checks the shape a device kind promises. Unknown keys are ignored, as the protocol asks of clients
(a newer agent may add some); a missing or mistyped known key is an error, never a KeyError or a
TypeError further down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, TypeVar

from ..errors import ProtocolError

_T = TypeVar("_T")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _wrong(where: str, expected: str, value: object) -> ProtocolError:
    return ProtocolError(f"{where}: expected {expected}, got {_type_name(value)} {_shown(value)}")


def is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def iso(moment: datetime | None) -> str | None:
    """A moment as the agent writes it: ISO 8601 with milliseconds and its UTC offset."""
    return None if moment is None else moment.isoformat(timespec="milliseconds")


class Fields:
    """One JSON object of a device's capabilities or state, read with its place in messages."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise _wrong(where, "an object", data)
        self.data: Mapping[str, Any] = data
        self.where = where

    def _at(self, key: str) -> str:
        return f"{self.where}.{key}"

    def _get(self, key: str) -> Any:
        if key not in self.data:
            raise ProtocolError(f"{self._at(key)}: is required")
        return self.data[key]

    def _checked(self, key: str, ok: Callable[[object], bool], expected: str) -> Any:
        value = self._get(key)
        if not ok(value):
            raise _wrong(self._at(key), expected, value)
        return value

    def _nullable(self, key: str, ok: Callable[[object], bool], expected: str) -> Any:
        value = self._get(key)
        if value is not None and not ok(value):
            raise _wrong(self._at(key), f"{expected} or null", value)
        return value

    # -- scalars

    def boolean(self, key: str) -> bool:
        value: bool = self._checked(key, lambda v: isinstance(v, bool), "a boolean")
        return value

    def integer(self, key: str, minimum: int | None = None, maximum: int | None = None) -> int:
        value: int = self._checked(key, is_integer, "a whole number")
        self._check_range(key, value, minimum, maximum)
        return value

    def number(self, key: str, minimum: float | None = None) -> float:
        value: float = self._checked(key, is_number, "a number")
        self._check_range(key, value, minimum, None)
        return value

    def string(self, key: str) -> str:
        value: str = self._checked(key, lambda v: isinstance(v, str), "a string")
        return value

    def optional_boolean(self, key: str) -> bool | None:
        value: bool | None = self._nullable(key, lambda v: isinstance(v, bool), "a boolean")
        return value

    def optional_integer(self, key: str, minimum: int | None = None) -> int | None:
        value: int | None = self._nullable(key, is_integer, "a whole number")
        if value is not None:
            self._check_range(key, value, minimum, None)
        return value

    def optional_number(self, key: str) -> float | None:
        value: float | None = self._nullable(key, is_number, "a number")
        return value

    def optional_string(self, key: str) -> str | None:
        value: str | None = self._nullable(key, lambda v: isinstance(v, str), "a string")
        return value

    def optional_moment(self, key: str) -> datetime | None:
        """An ISO 8601 date-time (with its UTC offset, as the agent writes it), or null."""
        text = self.optional_string(key)
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise _wrong(self._at(key), "an ISO 8601 date-time", text) from None
        # The agent always writes the offset; a time without one is read as UTC, not local time.
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    def _check_range(
        self, key: str, value: float, minimum: float | None, maximum: float | None
    ) -> None:
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            low = "" if minimum is None else f"{minimum:g}"
            high = "" if maximum is None else f"{maximum:g}"
            raise ProtocolError(f"{self._at(key)}: {value!r} is out of range {low}..{high}")

    # -- containers

    def strings(self, key: str) -> tuple[str, ...]:
        items = self._checked(key, lambda v: isinstance(v, list), "a list of strings")
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise _wrong(f"{self._at(key)}[{index}]", "a string", item)
        return tuple(items)

    def objects(self, key: str, read: Callable[[Fields], _T]) -> tuple[_T, ...]:
        """A list of objects, each read by ``read``."""
        items = self._checked(key, lambda v: isinstance(v, list), "a list of objects")
        return tuple(
            read(Fields(item, f"{self._at(key)}[{index}]")) for index, item in enumerate(items)
        )

    def mapping(self, key: str, read: Callable[[Fields], _T]) -> dict[str, _T]:
        """An object whose keys are names (zone ids...), each value an object read by ``read``."""
        inner = Fields(self._get(key), self._at(key))
        return {name: read(Fields(value, inner._at(name))) for name, value in inner.items()}

    def object(self, key: str, read: Callable[[Fields], _T]) -> _T:
        return read(Fields(self._get(key), self._at(key)))

    def optional_object(self, key: str, read: Callable[[Fields], _T]) -> _T | None:
        value = self._nullable(key, lambda v: isinstance(v, Mapping), "an object")
        return None if value is None else read(Fields(value, self._at(key)))

    def scalar_mapping(self, key: str) -> dict[str, str | None]:
        """An object of strings or nulls (free-form diagnostics)."""
        inner = Fields(self._get(key), self._at(key))
        return {name: inner.optional_string(name) for name, _value in inner.items()}

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(self.data.items())


class WireModel:
    """A frozen dataclass of the device contract: ``from_wire`` validates, ``to_wire`` encodes.

    ``to_wire`` writes the keys in the order the agent sends them, so a device that builds its
    wire dict through these classes sends exactly what it sent before.
    """

    __slots__ = ()
    WHERE: ClassVar[str]

    @classmethod
    def from_wire(cls, wire: object) -> Self:
        """Validate and convert a wire object; ProtocolError names the first bad field."""
        return cls.read(Fields(wire, cls.WHERE))

    @classmethod
    def read(cls, fields: Fields) -> Self:
        raise NotImplementedError

    def to_wire(self) -> dict[str, Any]:
        raise NotImplementedError


class ActionParams:
    """The parameters of one action, as a frozen dataclass; ``action`` names the action.

    ``to_wire`` leaves out what is None: the agent then applies its default.
    """

    __slots__ = ()
    action: ClassVar[str]

    def to_wire(self) -> dict[str, Any]:
        found = ((field.name, getattr(self, field.name)) for field in dataclass_fields(self))  # type: ignore[arg-type]
        return {name: value for name, value in found if value is not None}


class Opaque(WireModel):
    """The capabilities or state of a device kind this protocol version does not know.

    Kept as the agent sent it (a shallow copy), so a client can still show it.
    """

    __slots__ = ("data",)
    WHERE: ClassVar[str] = "device"

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data: Mapping[str, Any] = dict(data)

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(fields.data)

    def to_wire(self) -> dict[str, Any]:
        return dict(self.data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.data == self.data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Opaque({dict(self.data)!r})"
