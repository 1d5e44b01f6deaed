"""The Pi Secure WS integration: a Raspberry Pi's lights, sprinklers, frame and camera over WSS."""

from __future__ import annotations

import math
from typing import Any

from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.typing import ConfigType

from .connection import AgentConnection, PiSecureWsConfigEntry, create_client
from .const import DOMAIN
from .issues import async_create_certificate_issue, async_delete_certificate_issue
from .protocol.errors import (
    Blocked,
    CertificateMismatch,
    InvalidAuth,
    PiSecureWsError,
    ServerAuthFailed,
)
from .services import async_setup_services

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services once, whether or not an agent is configured yet."""
    async_setup_services(hass)

    @callback
    def entry_changed(change: ConfigEntryChange, entry: ConfigEntry[Any]) -> None:
        # A disabled entry that failed to set up is never unloaded by its integration, yet its
        # certificate issue must not outlive it.
        if entry.domain == DOMAIN and entry.disabled_by is not None:
            async_delete_certificate_issue(hass, entry)

    async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, entry_changed)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: PiSecureWsConfigEntry) -> bool:
    """Log in once (so failures are reported the right way), then keep the session running."""
    client = create_client(entry.data)
    try:
        hello = await client.connect()
    except InvalidAuth as err:
        await client.close()
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    except CertificateMismatch as err:
        await client.close()
        async_create_certificate_issue(hass, entry, err)
        raise ConfigEntryError(
            translation_domain=DOMAIN, translation_key="certificate_mismatch"
        ) from err
    except ServerAuthFailed as err:
        await client.close()
        raise ConfigEntryError(
            translation_domain=DOMAIN, translation_key="server_auth_failed"
        ) from err
    except Blocked as err:
        await client.close()
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="blocked",
            translation_placeholders={"retry_after": str(max(1, math.ceil(err.retry_after)))},
        ) from err
    except PiSecureWsError as err:
        await client.close()
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"message": str(err)},
        ) from err
    # Connected with the pinned certificate: any earlier warning about it is resolved.
    async_delete_certificate_issue(hass, entry)
    connection = AgentConnection(hass, entry, client, hello)
    entry.runtime_data = connection
    connection.async_start()
    await hass.config_entries.async_forward_entry_setups(entry, connection.platforms)
    connection.async_remove_stale_entities()
    return True


async def async_unload_entry(hass: HomeAssistant, entry: PiSecureWsConfigEntry) -> bool:
    """Remove the entities, then end the session."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, entry.runtime_data.platforms)
    if unloaded:
        await entry.runtime_data.async_close()
        # Not connecting any more: the next setup raises the issue again if it still holds.
        async_delete_certificate_issue(hass, entry)
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: PiSecureWsConfigEntry) -> None:
    """A deleted entry leaves no repair issue behind, whatever state it was in."""
    async_delete_certificate_issue(hass, entry)
