"""The voluptuous validators agent.toml's core sections share, and how a problem names its key.

A leaf: it imports nothing of the agent's, so config and the device registry both use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import voluptuous as vol


def number(minimum: float | None = None, maximum: float | None = None) -> Callable[[Any], float]:
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


def positive_number(maximum: float | None = None) -> Callable[[Any], float]:
    base = number(maximum=maximum)

    def validate(value: Any) -> float:
        result = base(value)
        if result <= 0:
            raise vol.Invalid("must be greater than 0")
        return result

    return validate


def integer(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid("expected an integer")
        if value < minimum:
            raise vol.Invalid(f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise vol.Invalid(f"must be at most {maximum}")
        return value

    return validate


def text(max_length: int = 255) -> Callable[[Any], str]:
    def validate(value: Any) -> str:
        if not isinstance(value, str):
            raise vol.Invalid("expected a string")
        if not value.strip():
            raise vol.Invalid("must not be empty")
        if len(value) > max_length:
            raise vol.Invalid(f"must be at most {max_length} characters")
        return value

    return validate


def matching(pattern: str, max_length: int, problem: str) -> Callable[[Any], str]:
    """Text that matches ``pattern``; ``problem`` names what it is not (``{!r}`` is the text)."""
    compiled = re.compile(pattern)
    base = text(max_length)

    def validate(value: Any) -> str:
        name = base(value)
        if not compiled.match(name):
            raise vol.Invalid(problem.format(name))
        return name

    return validate


host = matching(r"^[A-Za-z0-9_.:%-]+$", 253, "{!r} is not a host name or IP address")
origin = matching(
    r"^https?://[^/\s?#]+$", 255, "{!r} is not an origin like https://homeassistant.local:8123"
)


def section(schema: dict[Any, Any]) -> vol.Schema:
    # Absent section = all defaults; unknown keys are errors (a typo must not be ignored).
    return vol.Schema(schema, extra=vol.PREVENT_EXTRA)


def format_path(prefix: str, path: Sequence[Any]) -> str:
    """``("light", 1, "pin")`` -> ``light[1].pin``."""
    name = prefix
    for part in path:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name


def validate(schema: vol.Schema, value: Any, prefix: str, problems: list[str]) -> Any:
    """``schema(value)``, or None with each problem appended as ``"key.path: problem"``."""
    try:
        return schema(value)
    except vol.MultipleInvalid as err:
        for one in err.errors:
            problems.append(f"{format_path(prefix, one.path)}: {one.error_message}")
    except vol.Invalid as err:
        problems.append(f"{format_path(prefix, err.path)}: {err.error_message}")
    return None
