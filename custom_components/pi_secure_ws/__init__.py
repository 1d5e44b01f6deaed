"""The Pi Secure WS integration: a Raspberry Pi's lights, sprinklers, frame and camera over WSS."""

from __future__ import annotations

import math

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.typing import ConfigType

from .connection import (
    AgentConnection,
    PiSecureWsConfigEntry,
    async_create_certificate_issue,
    certificate_issue_id,
    create_client,
)
from .const import DOMAIN
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
    ir.async_delete_issue(hass, DOMAIN, certificate_issue_id(entry))
    connection = AgentConnection(hass, entry, client, hello)
    entry.runtime_data = connection
    connection.async_start()
    await hass.config_entries.async_forward_entry_setups(entry, connection.platforms)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: PiSecureWsConfigEntry) -> bool:
    """Remove the entities, then end the session."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, entry.runtime_data.platforms)
    if unloaded:
        await entry.runtime_data.async_close()
    return unloaded
