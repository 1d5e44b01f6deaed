"""The registry of device kinds: which module owns which ``agent.toml`` section, in which order
they are built, and the checks across sections that no single module can make.

Each module in :data:`DEVICE_MODULES` owns one top-level section and exports ``CONFIG_KEY``,
``CONFIG_SCHEMA``, ``used_pins(section)`` and ``create(section, ctx)``. Config validates with
:data:`REGISTRY` handed to it (``load_config(config_dir, REGISTRY)``) and so imports no device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import voluptuous as vol

from pi_agent.config import Limits

from . import camera, frame, lights, sprinklers, system
from .base import Device, DeviceContext

# A binary frame's header room beside its payload (pi_secure_ws_protocol.binary).
UPLOAD_HEADER_ROOM: Final = 4096 + 2


class DeviceModule(Protocol):
    """What config and build_devices() need from a device module."""

    @property
    def CONFIG_KEY(self) -> str: ...

    @property
    def CONFIG_SCHEMA(self) -> vol.Schema: ...

    def used_pins(self, section: Any) -> list[tuple[str, int]]: ...

    def create(self, section: Any, ctx: DeviceContext) -> list[Device]: ...


@dataclass(frozen=True)
class DeviceRegistry:
    """Device modules in listing order; ``safety_first`` are built before the others (relays
    driven to their inactive level before the slower or state-reading devices start)."""

    modules: tuple[DeviceModule, ...]
    safety_first: tuple[DeviceModule, ...] = ()

    def schemas(self) -> dict[str, vol.Schema]:
        return {module.CONFIG_KEY: module.CONFIG_SCHEMA for module in self.modules}

    def build_order(self) -> list[DeviceModule]:
        order = {id(module): rank for rank, module in enumerate(self.safety_first)}
        return sorted(self.modules, key=lambda module: order.get(id(module), len(order)))

    def check(self, sections: Mapping[str, Any], limits: Limits) -> list[str]:
        modules = {module.CONFIG_KEY: module for module in self.modules}
        problems: list[str] = []
        _check_pins(modules, sections, problems)
        _check_device_ids(modules, sections, problems)
        _check_upload_fits(limits, sections, problems)
        return problems


DEVICE_MODULES: Final[tuple[DeviceModule, ...]] = (lights, sprinklers, frame, camera)
SAFETY_FIRST: Final[tuple[DeviceModule, ...]] = (sprinklers, lights)
REGISTRY: Final = DeviceRegistry(DEVICE_MODULES, SAFETY_FIRST)
NO_DEVICES: Final = DeviceRegistry(())  # the core sections alone


def _qualify(key: str, path: str) -> str:
    """Module key paths may or may not start with their section key; report them with it."""
    if path == key or path.startswith((f"{key}.", f"{key}[")):
        return path
    return f"{key}{path}" if path.startswith("[") else f"{key}.{path}"


def _check_pins(
    modules: Mapping[str, DeviceModule], sections: Mapping[str, Any], problems: list[str]
) -> None:
    owners: dict[int, str] = {}
    for key, section in sections.items():
        for path, pin in modules[key].used_pins(section):
            where = _qualify(key, path)
            if pin in owners:
                problems.append(f"{where}: BCM pin {pin} is already used by {owners[pin]}")
            else:
                owners[pin] = where


def _check_device_ids(
    modules: Mapping[str, DeviceModule], sections: Mapping[str, Any], problems: list[str]
) -> None:
    """Device ids are unique across modules: a list section (``[[light]]``) makes one device per
    entry, named by its ``id``; any other section is one device with its module's ``DEVICE_ID``."""
    owners: dict[str, str] = {system.DEVICE_ID: "the system device"}
    listed: list[tuple[str, str]] = []
    for key, section in sections.items():
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


def _check_upload_fits(limits: Limits, sections: Mapping[str, Any], problems: list[str]) -> None:
    """A picture upload travels in one message: a cap below it would close the session."""
    section = sections.get(frame.CONFIG_KEY)
    if not isinstance(section, dict) or "max_upload_bytes" not in section:
        return
    largest = section["max_upload_bytes"]
    needed = largest + UPLOAD_HEADER_ROOM
    if limits.max_message_size < needed:
        problems.append(
            f"limits.max_message_size: {limits.max_message_size} is smaller than an upload of "
            f"frame.max_upload_bytes ({largest}) plus its header; make it at least {needed}"
        )
    # Held twice while it is handled (its frame and its payload): a budget below that refuses
    # every upload of the largest allowed size.
    if limits.memory_budget < 2 * needed:
        problems.append(
            f"limits.memory_budget: {limits.memory_budget} cannot hold an upload of "
            f"frame.max_upload_bytes ({largest}) while it is handled; "
            f"make it at least {2 * needed}"
        )
