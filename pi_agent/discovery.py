"""mDNS/zeroconf advertisement, so Home Assistant discovers the agent on the LAN.

The TXT record carries the agent id (so Home Assistant can match an existing entry) and the
version; nothing secret.
"""

from __future__ import annotations

import socket

from pi_secure_ws_protocol.const import ZEROCONF_TYPE
from zeroconf import ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from . import __version__
from .config import AgentConfig


class Advertisement:
    def __init__(self, zeroconf: AsyncZeroconf, info: ServiceInfo) -> None:
        self.zeroconf = zeroconf
        self.info = info


def service_info(config: AgentConfig, port: int) -> ServiceInfo:
    """The mDNS record: our service type, the port, and the agent id in TXT (nothing secret)."""
    hostname = socket.gethostname().split(".")[0]
    server = (config.agent.advertise_host or f"{hostname}.local").rstrip(".") + "."
    instance = f"{config.agent.name} ({config.agent_id[:8]})"
    return ServiceInfo(
        ZEROCONF_TYPE,
        f"{instance}.{ZEROCONF_TYPE}",
        port=port,
        properties={"agent_id": config.agent_id, "version": __version__, "name": config.agent.name},
        server=server,
    )


async def advertise(config: AgentConfig, port: int) -> Advertisement:
    info = service_info(config, port)
    zeroconf = AsyncZeroconf()
    await zeroconf.async_register_service(info, allow_name_change=True)
    return Advertisement(zeroconf, info)


async def withdraw(handle: object) -> None:
    if isinstance(handle, Advertisement):
        await handle.zeroconf.async_unregister_service(handle.info)
        await handle.zeroconf.async_close()
