"""How the ``pi-agent`` commands print: results on stdout, each problem as one line on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any, Final

PROG: Final = "pi-agent"


def err(line: str) -> None:
    print(f"{PROG}: {line}", file=sys.stderr)


def out(text: str = "") -> None:
    print(text)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))
