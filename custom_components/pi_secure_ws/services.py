"""Services: run a zone for a given time, stop every zone, show a named picture.

Registered once in ``async_setup`` with plain ``hass.services`` calls; each call names its target
(a valve entity or a config entry) and fails with a translated message when that is not usable.
"""

from __future__ import annotations

from datetime import timedelta

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import entity_registry as er

from .connection import AgentConnection, PiSecureWsConfigEntry
from .const import (
    ATTR_CONFIG_ENTRY_ID,
    ATTR_DURATION,
    ATTR_NAME,
    DOMAIN,
    KIND_FRAME,
    KIND_SPRINKLERS,
    SERVICE_RUN_ZONE,
    SERVICE_SHOW_PICTURE,
    SERVICE_STOP_ALL,
)
from .protocol.const import Role

RUN_ZONE_SCHEMA = vol.Schema(
    {
        # A list, so both `data: entity_id:` and `target:` work; zones run in the order given.
        vol.Required(ATTR_ENTITY_ID): cv.entity_ids,
        vol.Required(ATTR_DURATION): vol.All(cv.time_period, cv.positive_timedelta),
    }
)
STOP_ALL_SCHEMA = vol.Schema({vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string})
SHOW_PICTURE_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_NAME): vol.All(cv.string, vol.Length(min=1, max=255)),
    }
)


def _loaded_connection(hass: HomeAssistant, entry_id: str) -> AgentConnection:
    entry: PiSecureWsConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_config_entry",
            translation_placeholders={"entry_id": entry_id},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    connection: AgentConnection = entry.runtime_data
    if connection.role < Role.CONTROL:
        # Every service commands a device: refused here rather than spending a request on it.
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="role_cannot_command",
            translation_placeholders={"title": entry.title, "role": connection.role.label},
        )
    return connection


def _device_of_kind(connection: AgentConnection, kind: str) -> str:
    devices = connection.devices_of_kind(kind)
    if not devices:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="no_such_device",
            translation_placeholders={"title": connection.entry.title, "kind": kind},
        )
    return devices[0].id


async def _async_run_zone(call: ServiceCall) -> None:
    duration: timedelta = call.data[ATTR_DURATION]
    seconds = max(1, round(duration.total_seconds()))
    # Check every zone before starting any, so a typo does not leave half a program running.
    runs = [_zone_of(call.hass, entity_id) for entity_id in call.data[ATTR_ENTITY_ID]]
    for connection, device_id, zone_id in runs:
        await connection.async_call(device_id, "run", {"zone": zone_id, "seconds": seconds})


def _zone_of(hass: HomeAssistant, entity_id: str) -> tuple[AgentConnection, str, str]:
    registry_entry = er.async_get(hass).async_get(entity_id)
    if (
        registry_entry is None
        or registry_entry.platform != DOMAIN
        or not registry_entry.config_entry_id
    ):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_a_zone",
            translation_placeholders={"entity_id": entity_id},
        )
    connection = _loaded_connection(hass, registry_entry.config_entry_id)
    zone = connection.zones_by_unique_id.get(registry_entry.unique_id)
    if zone is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_a_zone",
            translation_placeholders={"entity_id": entity_id},
        )
    device_id, zone_id = zone
    return connection, device_id, zone_id


async def _async_stop_all(call: ServiceCall) -> None:
    connection = _loaded_connection(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    await connection.async_call(_device_of_kind(connection, KIND_SPRINKLERS), "stop_all")


async def _async_show_picture(call: ServiceCall) -> None:
    connection = _loaded_connection(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    await connection.async_call(
        _device_of_kind(connection, KIND_FRAME), "show", {"name": call.data[ATTR_NAME]}
    )


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    hass.services.async_register(DOMAIN, SERVICE_RUN_ZONE, _async_run_zone, RUN_ZONE_SCHEMA)
    hass.services.async_register(DOMAIN, SERVICE_STOP_ALL, _async_stop_all, STOP_ALL_SCHEMA)
    hass.services.async_register(
        DOMAIN, SERVICE_SHOW_PICTURE, _async_show_picture, SHOW_PICTURE_SCHEMA
    )
