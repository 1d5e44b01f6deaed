"""The Pi Secure WS integration: a Raspberry Pi's lights, sprinklers, frame and camera over WSS."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryError,
    ConfigEntryNotReady,
    HomeAssistantError,
)
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.typing import ConfigType

from .connection import AgentConnection, PiSecureWsConfigEntry, create_client
from .const import DOMAIN
from .issues import async_create_certificate_issue, async_delete_certificate_issue
from .protocol.errors import CertificateMismatch, PiSecureWsError, Recovery, classify
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
    except PiSecureWsError as err:
        await client.close()
        raise _setup_error(hass, entry, err) from err
    # Connected with the pinned certificate: any earlier warning about it is resolved.
    async_delete_certificate_issue(hass, entry)
    connection = AgentConnection(hass, entry, client, hello)
    entry.runtime_data = connection
    connection.async_start()
    await hass.config_entries.async_forward_entry_setups(entry, connection.platforms)
    connection.async_remove_stale_entities()
    return True


def _setup_error(
    hass: HomeAssistant, entry: PiSecureWsConfigEntry, err: PiSecureWsError
) -> HomeAssistantError:
    """What Home Assistant does about a failed first login: the error's meaning decides."""
    meaning = classify(err)
    key = meaning.connect_key
    if meaning.recovery is Recovery.REAUTH:
        return ConfigEntryAuthFailed(translation_domain=DOMAIN, translation_key=key)
    if meaning.recovery is Recovery.REPAIR:
        if isinstance(err, CertificateMismatch):
            async_create_certificate_issue(hass, entry, err)
        # Not the paired agent: retrying cannot help, only the user can.
        return ConfigEntryError(translation_domain=DOMAIN, translation_key=key)
    if meaning.retry_after_seconds is not None:
        placeholders = {"retry_after": str(meaning.retry_after_seconds)}
    else:
        placeholders = {"message": str(err)}
    return ConfigEntryNotReady(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


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
