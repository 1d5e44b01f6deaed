"""The one place that owns an entry's session with its agent, and its only way to the agent.

It keeps the client running in a background task (the client reconnects with back-off and
resynchronises by itself), turns the client's events into entity updates, and decides what a
failure means for the user: a network error only makes entities unavailable, a refused login
starts a reauth flow, and a changed certificate raises a repair issue and stops connecting.

What the agent said (its hello, the devices' states, whether the session is up) is the client's:
read through, never copied. Requests and streams go through here, so their failures reach the
user in one way.
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
from .devices import AgentDevices, hello_layout
from .issues import async_create_certificate_issue
from .protocol.client import (
    AgentClient,
    ClientEvent,
    ClientStream,
    Connected,
    Disconnected,
    Hello,
    StateChanged,
)
from .protocol.const import Role
from .protocol.devices import DeviceState
from .protocol.errors import (
    CertificateMismatch,
    ErrorKind,
    PiSecureWsError,
    Recovery,
    classify,
)

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
    """An entry's session: the client (and what it knows), the device objects, who to tell."""

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
        self.stats = ConnectionStats()
        # Kept until closed, or until the session's task ends (nothing reconnects any more).
        self._kept = True
        # What the entities and platforms were built for: a change needs them built again.
        self._built_for_role = hello.role
        # One object per device the agent reports: what its entities read and meet at.
        self.devices = AgentDevices(hass, entry, self.state_of)
        self.devices.add_new(hello)
        self._unsub_client: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        # The platforms set up for this entry, kept for its unload: a changed role reloads it.
        self.platforms = list(PLATFORMS if self.role >= Role.CONTROL else VIEWER_PLATFORMS)

    @property
    def hello(self) -> Hello:
        """The agent's latest hello (the client's: the entry's setup logged in first)."""
        hello = self.client.hello
        assert hello is not None
        return hello

    @property
    def states(self) -> dict[str, DeviceState]:
        """The latest state of each device, as the client last heard it."""
        return self.client.states

    @property
    def connected(self) -> bool:
        """The session is up, and this connection still keeps it."""
        return self._kept and self.client.connected

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
        hello = self.hello
        info = DeviceInfo(
            identifiers={(DOMAIN, hello.agent_id)},
            name=hello.name,
            manufacturer="Raspberry Pi",
            sw_version=str(hello.version),
        )
        if hello.model:
            info["model"] = str(hello.model)
        return info

    def state_of(self, device_id: str) -> DeviceState | None:
        """The latest state the agent pushed for the device; None while it has sent none."""
        return self.states.get(device_id)

    def devices_of_kind(self, kind: str) -> list[PiDevice]:
        return self.devices.of_kind(kind)

    def zone_of_valve(self, unique_id: str) -> tuple[PiDevice, Zone] | None:
        return self.devices.zone_of_valve(unique_id)

    @callback
    def async_add_device_adder(self, platform: str, add: Callable[[list[PiDevice]], None]) -> None:
        """A platform set up: add its entities for the devices reported now, and later ones."""
        self.devices.async_add_adder(platform, add)

    @callback
    def async_remove_stale_entities(self) -> None:
        self.devices.async_remove_stale_entities()

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
        self._kept = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.client.close()
        self.devices.async_forget_listeners()

    async def _async_keep_connected(self) -> None:
        try:
            await self.client.run()
        except PiSecureWsError as err:
            self._session_ended(err)
        finally:
            was_kept, self._kept = self._kept, False
            if was_kept and self._reported_up:
                self._set_disconnected(None)

    @callback
    def _session_ended(self, err: PiSecureWsError) -> None:
        """The client gave up (it retries everything else): only the user can help now."""
        meaning = classify(err)
        if meaning.recovery is Recovery.REAUTH:
            # A definite refusal of the secret: retrying would only trip the agent's block list.
            LOGGER.warning("%s refused the secret; asking for a new one", self.entry.title)
            self.entry.async_start_reauth(self.hass)
            return
        if isinstance(err, CertificateMismatch):
            LOGGER.error("%s: %s; not connecting until it is re-paired", self.entry.title, err)
            async_create_certificate_issue(self.hass, self.entry, err)
            return
        if meaning.kind is ErrorKind.SERVER_AUTH_FAILED:
            LOGGER.error("%s: the agent failed to prove its identity: %s", self.entry.title, err)
        else:
            LOGGER.error("%s: session ended: %s", self.entry.title, err)
        self.stats.last_error = str(err)

    @property
    def _reported_up(self) -> bool:
        """The entities were last told the session is up."""
        return self.stats.connected_since is not None

    @callback
    def _handle_event(self, event: ClientEvent) -> None:
        if isinstance(event, StateChanged):
            self.stats.state_updates += 1
            self.devices.async_notify(event.device)
        elif isinstance(event, Disconnected):
            self._set_disconnected(event.error)
        elif isinstance(event, Connected):
            self._handle_connected(event.hello)

    @callback
    def _set_disconnected(self, error: Exception | None) -> None:
        if self._reported_up:
            LOGGER.info("Lost the connection to %s: %s", self.entry.title, error or "closed")
        self.stats.disconnects += 1
        self.stats.last_disconnect = dt_util.utcnow()
        self.stats.connected_since = None
        if error is not None:
            self.stats.last_error = str(error)
        self.devices.async_notify_all()

    @callback
    def _handle_connected(self, hello: Hello) -> None:
        if not self._reported_up:
            LOGGER.info("Connected to %s again", self.entry.title)
        before, after = self.devices.layout, hello_layout(hello)
        changed = {
            device for device in before.keys() & after.keys() if before[device] != after[device]
        }
        # A changed role changes which entities and platforms exist (a client re-roled on the Pi).
        role_changed = hello.role != self._built_for_role
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
        self.devices.async_follow(hello)
        self.devices.async_notify_all()

    def _check_connected(self) -> None:
        if not self.connected:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="not_connected",
                translation_placeholders={"title": self.entry.title},
            )

    async def async_call(
        self,
        device_id: str,
        action: str,
        params: dict[str, Any] | None = None,
        *,
        data: bytes | None = None,
    ) -> Any:
        """Run an action on the agent; failures become errors Home Assistant shows the user."""
        self._check_connected()
        timeout = float(self.entry.options.get(CONF_REQUEST_TIMEOUT, DEFAULT_REQUEST_TIMEOUT))
        try:
            return await self.client.call(device_id, action, params, timeout=timeout, data=data)
        except PiSecureWsError as err:
            raise self._user_error(device_id, action, err) from err

    async def async_stream(
        self, device_id: str, action: str, params: dict[str, Any] | None = None
    ) -> ClientStream:
        """Start a stream (the camera's frames); failures as for ``async_call``."""
        self._check_connected()
        try:
            return await self.client.stream(device_id, action, params)
        except PiSecureWsError as err:
            raise self._user_error(device_id, action, err) from err

    def _user_error(self, device_id: str, action: str, err: PiSecureWsError) -> HomeAssistantError:
        meaning = classify(err)
        placeholders = {
            "title": self.entry.title,
            "device": device_id,
            "action": action,
            "message": meaning.detail,
        }
        error = HomeAssistantError
        if meaning.kind in (ErrorKind.REFUSED, ErrorKind.FORBIDDEN):
            # The agent understood and said no (over a limit, rain delay, a role changed on the
            # Pi): the user's to fix, so shown without a traceback in the log.
            error = ServiceValidationError
        return error(
            translation_domain=DOMAIN,
            translation_key=meaning.request_key,
            translation_placeholders=placeholders,
        )
