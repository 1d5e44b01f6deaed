"""Building the configured devices, from the registry of device kinds (:mod:`.registry`)."""

from __future__ import annotations

from collections.abc import Callable

from pi_agent.config import AgentConfig
from pi_agent.errors import ConfigError

from .base import Device, DeviceContext
from .registry import DEVICE_MODULES as DEVICE_MODULES
from .registry import REGISTRY
from .system import RebootCallback, create_system_device


def build_devices(
    config: AgentConfig,
    ctx: DeviceContext,
    *,
    on_restart: Callable[[], None] | None = None,
    on_reboot: RebootCallback | None = None,
) -> list[Device]:
    """The system device, then every configured module's devices, in the registry's order.

    ``on_restart`` and ``on_reboot`` go to the system device (how the app restarts itself).

    Raises ConfigError when two devices end up with the same id.
    """
    # Built in safety order (relays first, each driven to its inactive level as it is built,
    # before the slower or state-reading devices); listed in the registry's order.
    built: dict[str, list[Device]] = {}
    for module in REGISTRY.build_order():
        section = config.devices.get(module.CONFIG_KEY)
        if section is not None:
            built[module.CONFIG_KEY] = module.create(section, ctx)
    devices: list[Device] = [create_system_device(ctx, on_restart=on_restart, on_reboot=on_reboot)]
    for module in REGISTRY.modules:
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
