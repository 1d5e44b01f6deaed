"""The registry of device kinds, and building the configured devices.

Each module in :data:`DEVICE_MODULES` owns one top-level section of ``agent.toml`` and exports
``CONFIG_KEY``, ``CONFIG_SCHEMA``, ``used_pins(section)`` and ``create(section, ctx)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

import voluptuous as vol

from . import camera, frame, lights, sprinklers
from .base import Device, DeviceContext
from .system import RebootCallback, create_system_device

if TYPE_CHECKING:
    from pi_agent.config import AgentConfig


class DeviceModule(Protocol):
    """What config.py and build_devices() need from a device module."""

    @property
    def CONFIG_KEY(self) -> str: ...

    @property
    def CONFIG_SCHEMA(self) -> vol.Schema: ...

    def used_pins(self, section: Any) -> list[tuple[str, int]]: ...

    def create(self, section: Any, ctx: DeviceContext) -> list[Device]: ...


DEVICE_MODULES: Final[tuple[DeviceModule, ...]] = (lights, sprinklers, frame, camera)
SAFETY_FIRST: Final[tuple[DeviceModule, ...]] = (sprinklers, lights)


def build_devices(
    config: AgentConfig,
    ctx: DeviceContext,
    *,
    on_restart: Callable[[], None] | None = None,
    on_reboot: RebootCallback | None = None,
) -> list[Device]:
    """The system device, then every configured module's devices, in DEVICE_MODULES order.

    ``on_restart`` and ``on_reboot`` go to the system device (how the app restarts itself).

    Raises ConfigError when two devices end up with the same id.
    """
    from pi_agent.config import ConfigError

    # Built in safety order (relays first, each driven to its inactive level as it is built,
    # before the slower or state-reading devices); listed in DEVICE_MODULES order.
    built: dict[str, list[Device]] = {}
    order = {id(module): rank for rank, module in enumerate(SAFETY_FIRST)}
    for module in sorted(DEVICE_MODULES, key=lambda module: order.get(id(module), len(order))):
        section = config.devices.get(module.CONFIG_KEY)
        if section is not None:
            built[module.CONFIG_KEY] = module.create(section, ctx)
    devices: list[Device] = [create_system_device(ctx, on_restart=on_restart, on_reboot=on_reboot)]
    for module in DEVICE_MODULES:
        devices.extend(built.get(module.CONFIG_KEY, []))
    seen: set[str] = set()
    duplicates = []
    for device in devices:
        if device.id in seen:
            duplicates.append(f"{device.id}: more than one device has this id")
        seen.add(device.id)
    if duplicates:
        raise ConfigError(duplicates)
    return devices
