"""Services: run a zone for a given time, stop every zone, show a named picture.

Registered once in ``async_setup`` with plain ``hass.services`` calls; each call names its target
(zone valves, or devices and areas holding them, or a config entry) and fails with a translated
message when that is not usable.
"""

from __future__ import annotations

from datetime import timedelta

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_AREA_ID,
    ATTR_DEVICE_ID,
    ATTR_ENTITY_ID,
    ATTR_FLOOR_ID,
    ATTR_LABEL_ID,
    ENTITY_MATCH_ALL,
    ENTITY_MATCH_NONE,
    Platform,
)
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from .connection import AgentConnection, PiSecureWsConfigEntry
from .const import (
    ATTR_CONFIG_ENTRY_ID,
    ATTR_DURATION,
    ATTR_NAME,
    DOMAIN,
    SERVICE_RUN_ZONE,
    SERVICE_SHOW_PICTURE,
    SERVICE_STOP_ALL,
)
from .protocol.const import Role
from .protocol.devices import DeviceKind, SprinklerAction
from .protocol.devices.frame import ShowPicture
from .protocol.devices.sprinklers import RunZone

# A `target:` (zone valves, or devices, areas, floors or labels holding them), as entity actions
# take; the UI offers it through services.yaml. Zones named by entity id run in the order given.
RUN_ZONE_SCHEMA = vol.All(
    cv.make_entity_service_schema(
        {vol.Required(ATTR_DURATION): vol.All(cv.time_period, cv.positive_timedelta)}
    ),
    cv.has_at_least_one_key(*cv.ENTITY_SERVICE_FIELDS),
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
    named = _ids(call, ATTR_ENTITY_ID)
    # Check every zone before starting any, so a typo does not leave half a program running. An
    # entity named outright must be a zone; of a device, area, floor or label, only its zones run.
    runs = [_zone_of(call.hass, entity_id) for entity_id in named]
    for entity_id in _zones_reached(call, exclude=set(named)):
        if (run := _zone_or_none(call.hass, entity_id)) is not None:
            runs.append(run)
    if not runs:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_zone_targeted")
    for connection, device_id, zone_id in runs:
        params = RunZone(zone=zone_id, seconds=seconds)
        await connection.async_call(device_id, params.action, params.to_wire())


def _ids(call: ServiceCall, key: str) -> list[str]:
    """A target field as a list, in the order given; "all" and "none" name no one id."""
    value = call.data.get(key)
    if value is None or value in (ENTITY_MATCH_ALL, ENTITY_MATCH_NONE):
        return []
    return list(dict.fromkeys([value] if isinstance(value, str) else value))


def _zones_reached(call: ServiceCall, *, exclude: set[str]) -> list[str]:
    """Our zone valves that the target's devices, areas, floors and labels hold (every one for
    ``entity_id: all``), by entity id.

    Done here over the registries (only our valves are candidates) rather than with Home
    Assistant's target helpers, whose signatures change between the releases we support.
    """
    every = call.data.get(ATTR_ENTITY_ID) == ENTITY_MATCH_ALL
    devices = set(_ids(call, ATTR_DEVICE_ID))
    areas = set(_ids(call, ATTR_AREA_ID))
    floors = set(_ids(call, ATTR_FLOOR_ID))
    labels = set(_ids(call, ATTR_LABEL_ID))
    if not (every or devices or areas or floors or labels):
        return []
    device_registry = dr.async_get(call.hass)
    areas |= {
        area.id
        for area in ar.async_get(call.hass).async_list_areas()
        if area.floor_id in floors or labels & set(area.labels)
    }
    reached: list[str] = []
    for registry_entry in er.async_get(call.hass).entities.values():
        if registry_entry.platform != DOMAIN or registry_entry.domain != Platform.VALVE:
            continue
        device = (
            device_registry.async_get(registry_entry.device_id)
            if registry_entry.device_id
            else None
        )
        area = registry_entry.area_id or (device.area_id if device else None)
        if (
            every
            or (device is not None and (device.id in devices or labels & set(device.labels)))
            or area in areas
            or labels & set(registry_entry.labels)
        ):
            reached.append(registry_entry.entity_id)
    return sorted(set(reached) - exclude)


def _zone_of(hass: HomeAssistant, entity_id: str) -> tuple[AgentConnection, str, str]:
    if (run := _zone_or_none(hass, entity_id)) is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="not_a_zone",
            translation_placeholders={"entity_id": entity_id},
        )
    return run


def _zone_or_none(hass: HomeAssistant, entity_id: str) -> tuple[AgentConnection, str, str] | None:
    """The session, device and zone of a zone valve, None for any other entity; an error for a
    zone of a Pi that is not loaded (it cannot run, and silence would hide that)."""
    registry_entry = er.async_get(hass).async_get(entity_id)
    if (
        registry_entry is None
        or registry_entry.platform != DOMAIN
        or registry_entry.domain != Platform.VALVE
        or not registry_entry.config_entry_id
        # A disabled valve is no entity Home Assistant runs: not its zone either.
        or registry_entry.disabled_by is not None
    ):
        return None
    connection = _loaded_connection(hass, registry_entry.config_entry_id)
    found = connection.zone_of_valve(registry_entry.unique_id)
    if found is None:
        return None
    device, zone = found
    return connection, device.id, zone.id


async def _async_stop_all(call: ServiceCall) -> None:
    connection = _loaded_connection(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    controller = _device_of_kind(connection, DeviceKind.SPRINKLER_CONTROLLER)
    await connection.async_call(controller, SprinklerAction.STOP_ALL)


async def _async_show_picture(call: ServiceCall) -> None:
    connection = _loaded_connection(call.hass, call.data[ATTR_CONFIG_ENTRY_ID])
    show = ShowPicture(name=call.data[ATTR_NAME])
    await connection.async_call(
        _device_of_kind(connection, DeviceKind.PICTURE_FRAME), show.action, show.to_wire()
    )


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    hass.services.async_register(DOMAIN, SERVICE_RUN_ZONE, _async_run_zone, RUN_ZONE_SCHEMA)
    hass.services.async_register(DOMAIN, SERVICE_STOP_ALL, _async_stop_all, STOP_ALL_SCHEMA)
    hass.services.async_register(
        DOMAIN, SERVICE_SHOW_PICTURE, _async_show_picture, SHOW_PICTURE_SCHEMA
    )
