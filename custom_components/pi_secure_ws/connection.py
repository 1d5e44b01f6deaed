"""The one place that owns an entry's session with its agent.

It keeps the client running in a background task (the client reconnects with back-off and
resynchronises by itself), turns the client's events into entity updates, and decides what a
failure means for the user: a network error only makes entities unavailable, a refused login
starts a reauth flow, and a changed certificate raises a repair issue and stops connecting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.util import dt as dt_util

from .const import (
    CONF_CA_PEM,
    CONF_CLIENT_ID,
    CONF_FINGERPRINT,
    CONF_REQUEST_TIMEOUT,
    CONF_SECRET,
    DEFAULT_REQUEST_TIMEOUT,
    DOMAIN,
    LOGGER,
    PLATFORMS,
    VIEWER_PLATFORMS,
)
from .device import PiDevice, Zone
from .protocol.client import (
    AgentClient,
    ClientEvent,
    Connected,
    Disconnected,
    Hello,
    StateChanged,
)
from .protocol.const import Role
from .protocol.devices import DeviceState
from .protocol.errors import (
    CertificateMismatch,
    CommandError,
    InvalidAuth,
    PiSecureWsError,
    RequestTimeout,
    ServerAuthFailed,
)
from .protocol.messages import ERR_FORBIDDEN, ERR_INVALID_PARAMS, ERR_REFUSED

PiSecureWsConfigEntry: TypeAlias = ConfigEntry["AgentConnection"]


def create_client(data: dict[str, Any] | Any) -> AgentClient:
    """A client for the connection details stored in (or about to be stored in) an entry."""
    return AgentClient(
        data[CONF_HOST],
        data[CONF_PORT],
        client_id=data[CONF_CLIENT_ID],
        secret=data[CONF_SECRET],
        fingerprint=data.get(CONF_FINGERPRINT),
        ca_pem=data.get(CONF_CA_PEM),
    )


def certificate_issue_id(entry: ConfigEntry[Any]) -> str:
    return f"certificate_mismatch_{entry.entry_id}"


@callback
def async_create_certificate_issue(
    hass: HomeAssistant, entry: ConfigEntry[Any], err: CertificateMismatch
) -> None:
    """Tell the user the agent now shows another certificate; we do not connect until re-paired."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        certificate_issue_id(entry),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key="certificate_mismatch",
        translation_placeholders={
            "title": entry.title,
            "host": str(entry.data[CONF_HOST]),
            "expected": err.expected,
            "actual": err.actual or "a certificate not signed by the paired certificate authority",
        },
    )


@callback
def async_delete_certificate_issue(hass: HomeAssistant, entry: ConfigEntry[Any]) -> None:
    ir.async_delete_issue(hass, DOMAIN, certificate_issue_id(entry))


@dataclass
class ConnectionStats:
    """Counters for diagnostics."""

    connects: int = 1
    disconnects: int = 0
    state_updates: int = 0
    connected_since: datetime | None = field(default_factory=dt_util.utcnow)
    last_disconnect: datetime | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "connects": self.connects,
            "disconnects": self.disconnects,
            "state_updates": self.state_updates,
            "connected_since": _iso(self.connected_since),
            "last_disconnect": _iso(self.last_disconnect),
            "last_error": self.last_error,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class AgentConnection:
    """An entry's session: the client, the latest hello and states, and who to tell."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: PiSecureWsConfigEntry,
        client: AgentClient,
        hello: Hello,
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.client = client
        self.hello = hello
        self.states: dict[str, DeviceState] = dict(hello.states)
        self.connected = True
        self.stats = ConnectionStats()
        # One object per device the agent reports: what its entities read and meet at.
        self.devices: dict[str, PiDevice] = {}
        self._add_devices(hello)
        # Per platform set up: adds that platform's entities for devices the agent adds.
        self._device_adders: list[Callable[[list[PiDevice]], None]] = []
        self._platforms: set[str] = set()
        self._unsub_client: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        # The platforms set up for this entry, kept for its unload: a changed role reloads it.
        self.platforms = list(PLATFORMS if self.role >= Role.CONTROL else VIEWER_PLATFORMS)

    @property
    def role(self) -> Role:
        """What this session may do, as the agent told it; an unknown role may do least."""
        try:
            return Role.parse(self.hello.role)
        except ValueError:
            return Role.VIEWER

    @property
    def agent_id(self) -> str:
        return self.hello.agent_id

    @property
    def device_info(self) -> DeviceInfo:
        """One Home Assistant device per Pi; every value a string."""
        info = DeviceInfo(
            identifiers={(DOMAIN, self.hello.agent_id)},
            name=self.hello.name,
            manufacturer="Raspberry Pi",
            sw_version=str(self.hello.version),
        )
        if self.hello.model:
            info["model"] = str(self.hello.model)
        return info

    def devices_of_kind(self, kind: str) -> list[PiDevice]:
        return [device for device in self.devices.values() if device.kind == kind]

    def state_of(self, device_id: str) -> DeviceState | None:
        """The latest state the agent pushed for the device; None while it has sent none."""
        return self.states.get(device_id)

    def zone_of_valve(self, unique_id: str) -> tuple[PiDevice, Zone] | None:
        """The device and zone of the zone valve with this unique id (valves are keyed by the
        zone's key), None for any other entity."""
        for device in self.devices.values():
            for zone in device.zones.values():
                if device.unique_id(zone.key) == unique_id:
                    return device, zone
        return None

    def _add_devices(self, hello: Hello) -> list[PiDevice]:
        """Objects for the devices of ``hello`` not known yet."""
        added = [
            PiDevice(hello.agent_id, info, self.state_of)
            for key, info in hello.devices.items()
            if key not in self.devices
        ]
        self.devices.update((device.id, device) for device in added)
        return added

    @callback
    def async_start(self) -> None:
        """Listen to the client and keep its session in a background task.

        A background task, so Home Assistant's shutdown never waits for the session to end.
        """
        self._unsub_client = self.client.add_listener(self._handle_event)
        self._task = self.entry.async_create_background_task(
            self.hass, self._async_keep_connected(), f"{DOMAIN} session {self.entry.title}"
        )

    async def async_close(self) -> None:
        """End the session (unload): stop the task, close the client, forget listeners."""
        if self._unsub_client is not None:
            self._unsub_client()
            self._unsub_client = None
        # Ending on purpose: not a lost connection worth a log line.
        self.connected = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.client.close()
        for device in self.devices.values():
            device.async_forget_listeners()

    async def _async_keep_connected(self) -> None:
        try:
            await self.client.run()
        except InvalidAuth:
            # A definite refusal of the secret: only the user can fix it, and retrying would only
            # trip the agent's block list.
            LOGGER.warning("%s refused the secret; asking for a new one", self.entry.title)
            self.entry.async_start_reauth(self.hass)
        except CertificateMismatch as err:
            LOGGER.error("%s: %s; not connecting until it is re-paired", self.entry.title, err)
            async_create_certificate_issue(self.hass, self.entry, err)
        except ServerAuthFailed as err:
            LOGGER.error("%s: the agent failed to prove its identity: %s", self.entry.title, err)
            self.stats.last_error = str(err)
        except PiSecureWsError as err:
            LOGGER.error("%s: session ended: %s", self.entry.title, err)
            self.stats.last_error = str(err)
        finally:
            if self.connected:
                self._set_disconnected(None)

    @callback
    def _handle_event(self, event: ClientEvent) -> None:
        if isinstance(event, StateChanged):
            self.stats.state_updates += 1
            if event.state is None:  # unreadable: the device's entities are unavailable
                self.states.pop(event.device, None)
            else:
                self.states[event.device] = event.state
            self._notify(event.device)
        elif isinstance(event, Disconnected):
            self._set_disconnected(event.error)
        elif isinstance(event, Connected):
            self._handle_connected(event.hello)

    @callback
    def _set_disconnected(self, error: Exception | None) -> None:
        if self.connected:
            LOGGER.info("Lost the connection to %s: %s", self.entry.title, error or "closed")
        self.connected = False
        self.stats.disconnects += 1
        self.stats.last_disconnect = dt_util.utcnow()
        self.stats.connected_since = None
        if error is not None:
            self.stats.last_error = str(error)
        self._notify_all()

    @callback
    def _handle_connected(self, hello: Hello) -> None:
        if not self.connected:
            LOGGER.info("Connected to %s again", self.entry.title)
        before = {key: device.layout for key, device in self.devices.items()}
        after = _device_layout(hello)
        changed = {
            device for device in before.keys() & after.keys() if before[device] != after[device]
        }
        # A changed role changes which entities and platforms exist (a client re-roled on the Pi).
        role_changed = hello.role != self.hello.role
        self.hello = hello
        self.states = dict(hello.states)
        self.connected = True
        self.stats.connects += 1
        self.stats.connected_since = dt_util.utcnow()
        if changed or role_changed:
            # Entities are built from a device's capabilities (a light's dimming, a controller's
            # zones) and the session's role: either changing needs them built again.
            LOGGER.info(
                "%s reports changed devices %s or role %s; reloading",
                self.entry.title,
                sorted(changed),
                hello.role,
            )
            self.hass.config_entries.async_schedule_reload(self.entry.entry_id)
            return
        removed = before.keys() - after.keys()
        added = self._add_devices(hello)
        if added or removed:
            LOGGER.info(
                "%s added devices %s and removed %s",
                self.entry.title,
                [device.id for device in added],
                sorted(removed),
            )
            self._async_remove_entities({uid for d in removed for uid in self._forget(d)})
            for add in self._device_adders:
                add(added)
        self._notify_all()

    @callback
    def async_add_device_adder(self, platform: str, add: Callable[[list[PiDevice]], None]) -> None:
        """A platform set up: add its entities for the devices reported now, and later ones."""
        self._platforms.add(platform)
        self._device_adders.append(add)
        add(list(self.devices.values()))

    @callback
    def async_remove_stale_entities(self) -> None:
        """After setup: remove registry entries of entities no reported device has any more
        (devices removed from agent.toml while Home Assistant was not connected)."""
        known = {uid for device in self.devices.values() for uid in device.entity_unique_ids}
        registry = er.async_get(self.hass)
        stale = {
            registry_entry.unique_id
            for registry_entry in er.async_entries_for_config_entry(registry, self.entry.entry_id)
            # Only platforms that set up said what they provide.
            if registry_entry.domain in self._platforms and registry_entry.unique_id not in known
        }
        self._async_remove_entities(stale)

    def _forget(self, device_id: str) -> set[str]:
        """Drop a device the agent no longer reports; the unique ids of its entities."""
        device = self.devices.pop(device_id)
        device.async_forget_listeners()
        return device.entity_unique_ids

    @callback
    def _async_remove_entities(self, unique_ids: set[str]) -> None:
        if not unique_ids:
            return
        registry = er.async_get(self.hass)
        for registry_entry in er.async_entries_for_config_entry(registry, self.entry.entry_id):
            if registry_entry.unique_id in unique_ids:
                LOGGER.debug("Removing %s: its device is gone", registry_entry.entity_id)
                registry.async_remove(registry_entry.entity_id)

    @callback
    def _notify(self, device_id: str) -> None:
        if (device := self.devices.get(device_id)) is not None:
            device.async_notify()

    @callback
    def _notify_all(self) -> None:
        for device in list(self.devices.values()):
            device.async_notify()

    async def async_call(
        self,
        device_id: str,
        action: str,
        params: dict[str, Any] | None = None,
        *,
        data: bytes | None = None,
    ) -> Any:
        """Run an action on the agent; failures become errors Home Assistant shows the user."""
        if not self.connected:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="not_connected",
                translation_placeholders={"title": self.entry.title},
            )
        timeout = float(self.entry.options.get(CONF_REQUEST_TIMEOUT, DEFAULT_REQUEST_TIMEOUT))
        try:
            return await self.client.call(device_id, action, params, timeout=timeout, data=data)
        except PiSecureWsError as err:
            raise self._user_error(device_id, action, err) from err

    def _user_error(self, device_id: str, action: str, err: PiSecureWsError) -> HomeAssistantError:
        placeholders = {
            "title": self.entry.title,
            "device": device_id,
            "action": action,
            "message": str(err),
        }
        if isinstance(err, CommandError):
            placeholders["message"] = err.message
            if err.code in (ERR_REFUSED, ERR_INVALID_PARAMS, ERR_FORBIDDEN):
                # The agent understood and said no (over a limit, rain delay, a role changed on
                # the Pi): the user's to fix, so shown without a traceback in the log.
                return ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="forbidden" if err.code == ERR_FORBIDDEN else "refused",
                    translation_placeholders=placeholders,
                )
            key = "command_failed"
        elif isinstance(err, RequestTimeout):
            key = "timeout"
        else:
            key = "not_connected"
        return HomeAssistantError(
            translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
        )


def _device_layout(hello: Hello) -> dict[str, tuple[str, Any]]:
    return {d.id: (d.kind, d.capabilities) for d in hello.devices.values()}
