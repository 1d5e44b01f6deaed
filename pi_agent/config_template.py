"""The documented ``agent.toml`` that ``init`` writes, from the templates in ``pi_agent/data``.

``agent.toml.in`` holds the core sections, ``demo-devices.toml.in`` one of each device kind;
``@NAME@`` placeholders are filled with TOML values, and one left over is an error.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Final

CORE_TEMPLATE: Final = "agent.toml.in"
DEVICES_TEMPLATE: Final = "demo-devices.toml.in"
PI_DEVICES_INTRO: Final = (
    "\n# Devices: uncomment and adapt to your wiring. Pins are BCM numbers; each pin may be used"
    " once.\n"
)


def template(name: str) -> str:
    """A template shipped as package data, with its @...@ placeholders."""
    return (resources.files("pi_agent") / "data" / name).read_text(encoding="utf-8")


def toml_string(value: str) -> str:
    # A JSON string with ASCII escapes is a valid TOML basic string.
    return json.dumps(value)


def fill(text: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        text = text.replace(f"@{placeholder}@", value)
    leftover = re.findall(r"@[A-Z_]+@", text)
    if leftover:
        raise ValueError(f"agent.toml template has unknown placeholders: {', '.join(leftover)}")
    return text


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
    demo = fill(
        template(DEVICES_TEMPLATE),
        {
            "PICTURES": toml_string(str(pictures_dir)),
            "CAMERA_BACKEND": toml_string(camera_backend),
        },
    )
    if hardware != "mock":
        demo = "\n".join(f"# {line}" if line else "#" for line in demo.splitlines()) + "\n"
        demo = PI_DEVICES_INTRO + demo
    core = fill(
        template(CORE_TEMPLATE),
        {
            "NAME": toml_string(name),
            "PORT": str(port),
            "ADVERTISE_HOST": toml_string(advertise_host),
            "HARDWARE": toml_string(hardware),
        },
    )
    return core + demo
