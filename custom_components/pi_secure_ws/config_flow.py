"""Pairing with an agent: by hand, from zeroconf, and again after a rotated secret or a move.

Trust is a pinned certificate authority. Either the user pastes its fingerprint (shown by
``pi-agent pairing`` on the Pi) and the agent must present exactly that, or the flow connects,
shows the fingerprint it saw and the user confirms it (trust on first use, explicitly).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from .connection import PiSecureWsConfigEntry
from .const import (
    CONF_CA_PEM,
    CONF_CAMERA_FPS,
    CONF_CLIENT_ID,
    CONF_FINGERPRINT,
    CONF_REQUEST_TIMEOUT,
    CONF_SECRET,
    DEFAULT_CAMERA_FPS,
    DEFAULT_REQUEST_TIMEOUT,
    DOMAIN,
    MAX_CAMERA_FPS,
    TXT_AGENT_ID,
)
from .pairing import (
    Paired,
    PairingError,
    async_pair,
    fingerprint_rows,
    pasted_fingerprint,
    secret_errors,
)
from .protocol.const import DEFAULT_CLIENT_ID, DEFAULT_PORT

_PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
_PORT = vol.All(vol.Coerce(int), vol.Range(min=1, max=65535))


class PiSecureWsConfigFlow(ConfigFlow, domain=DOMAIN):
    """Pair Home Assistant with a Pi running pi-agent."""

    VERSION = 1

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._paired: Paired | None = None
        self._discovered_name = ""

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: PiSecureWsConfigEntry) -> PiSecureWsOptionsFlow:
        return PiSecureWsOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Host, port, secret and client id; optionally the fingerprint to insist on."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            errors = secret_errors(user_input)
            try:
                fingerprint = pasted_fingerprint(user_input)
            except ValueError:
                errors[CONF_FINGERPRINT] = "invalid_fingerprint"
            if not errors:
                data = {
                    CONF_HOST: user_input[CONF_HOST].strip(),
                    CONF_PORT: user_input[CONF_PORT],
                    CONF_CLIENT_ID: user_input[CONF_CLIENT_ID].strip(),
                    CONF_SECRET: user_input[CONF_SECRET],
                    CONF_FINGERPRINT: fingerprint,
                }
                try:
                    paired = await async_pair(data)
                except PairingError as err:
                    errors["base"] = err.key
                    placeholders = err.placeholders
                else:
                    self._data = data
                    await self.async_set_unique_id(paired.hello.agent_id)
                    self._abort_if_unique_id_configured()
                    if fingerprint is not None:
                        # The agent presented exactly what the user pasted: nothing to confirm.
                        return self._async_create(paired)
                    self._paired = paired
                    return await self.async_step_confirm()
        # Everything typed stays after an error, the secret too: retyping 52 characters is
        # how a second mistake happens.
        suggested = user_input or {}
        schema = vol.Schema(
            {
                vol.Required(CONF_HOST): str,
                vol.Required(CONF_PORT, default=DEFAULT_PORT): _PORT,
                vol.Required(CONF_SECRET): _PASSWORD,
                vol.Required(CONF_CLIENT_ID, default=DEFAULT_CLIENT_ID): str,
                vol.Optional(CONF_FINGERPRINT): str,
            }
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the agent's name and certificate fingerprint for the user to compare."""
        assert self._paired is not None
        if user_input is not None:
            return self._async_create(self._paired)
        return self.async_show_form(
            step_id="confirm",
            description_placeholders={
                "name": self._paired.hello.name,
                "host": str(self._data[CONF_HOST]),
                "fingerprint": self._paired.fingerprint,
                "fingerprint_rows": fingerprint_rows(self._paired.fingerprint),
            },
        )

    @callback
    def _async_create(self, paired: Paired) -> ConfigFlowResult:
        return self.async_create_entry(
            title=paired.hello.name,
            data={
                **self._data,
                CONF_FINGERPRINT: paired.fingerprint,
                CONF_CA_PEM: paired.ca_pem,
            },
        )

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        """An agent announced itself; its TXT record names its agent id."""
        agent_id = discovery_info.properties.get(TXT_AGENT_ID)
        if not agent_id:
            return self.async_abort(reason="invalid_discovery_info")
        host = discovery_info.host
        port = discovery_info.port or DEFAULT_PORT
        await self.async_set_unique_id(agent_id)
        entry = self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, agent_id)
        if entry is not None and _is_connected(entry):
            # A working session is the better witness of where the agent is than an mDNS
            # answer anyone on the network could send.
            return self.async_abort(reason="already_configured")
        self._abort_if_unique_id_configured(updates={CONF_HOST: host, CONF_PORT: port})
        self._discovered_name = discovery_info.name.removesuffix(f".{discovery_info.type}")
        self._data = {CONF_HOST: host, CONF_PORT: port, CONF_CLIENT_ID: DEFAULT_CLIENT_ID}
        self.context["title_placeholders"] = {"name": self._discovered_name}
        return await self.async_step_zeroconf_confirm()

    async def async_step_zeroconf_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask only for the secret; the fingerprint is confirmed in the next step."""
        errors: dict[str, str] = {}
        placeholders = {"name": self._discovered_name, "host": str(self._data[CONF_HOST])}
        if user_input is not None and not (errors := secret_errors(user_input)):
            data = {**self._data, CONF_SECRET: user_input[CONF_SECRET], CONF_FINGERPRINT: None}
            try:
                paired = await async_pair(data)
            except PairingError as err:
                errors["base"] = err.key
                placeholders |= err.placeholders
            else:
                self._data = data
                if paired.hello.agent_id != self.unique_id:
                    # Another agent answers at that address now; pair with the one that answered.
                    await self.async_set_unique_id(paired.hello.agent_id, raise_on_progress=False)
                    self._abort_if_unique_id_configured()
                self._paired = paired
                return await self.async_step_confirm()
        return self.async_show_form(
            step_id="zeroconf_confirm",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema({vol.Required(CONF_SECRET): _PASSWORD}), user_input or {}
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The agent refused the stored secret (rotated on the Pi)."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        placeholders = {"title": entry.title}
        if user_input is not None and not (errors := secret_errors(user_input)):
            updates = {
                CONF_SECRET: user_input[CONF_SECRET],
                CONF_CLIENT_ID: user_input[CONF_CLIENT_ID].strip(),
            }
            try:
                paired = await async_pair({**entry.data, **updates})
            except PairingError as err:
                errors["base"] = err.key
                placeholders |= err.placeholders
            else:
                await self.async_set_unique_id(paired.hello.agent_id)
                self._abort_if_unique_id_mismatch(reason="wrong_device")
                return self.async_update_reload_and_abort(entry, data_updates=updates)
        schema = vol.Schema(
            {
                vol.Required(CONF_SECRET): _PASSWORD,
                vol.Required(CONF_CLIENT_ID, default=entry.data[CONF_CLIENT_ID]): str,
            }
        )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change host and port; pasting a new fingerprint re-pairs a Pi with a new certificate."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        placeholders = {"title": entry.title}
        if user_input is not None:
            try:
                fingerprint = pasted_fingerprint(user_input)
            except ValueError:
                errors[CONF_FINGERPRINT] = "invalid_fingerprint"
            else:
                data = {
                    **entry.data,
                    CONF_HOST: user_input[CONF_HOST].strip(),
                    CONF_PORT: user_input[CONF_PORT],
                }
                if fingerprint is not None:
                    data |= {CONF_FINGERPRINT: fingerprint, CONF_CA_PEM: None}
                try:
                    paired = await async_pair(data)
                except PairingError as err:
                    errors["base"] = err.key
                    placeholders |= err.placeholders
                else:
                    await self.async_set_unique_id(paired.hello.agent_id)
                    self._abort_if_unique_id_mismatch(reason="wrong_device")
                    data |= {CONF_FINGERPRINT: paired.fingerprint, CONF_CA_PEM: paired.ca_pem}
                    return self.async_update_reload_and_abort(entry, data=data)
        schema = vol.Schema(
            {
                vol.Required(CONF_HOST): str,
                vol.Required(CONF_PORT): _PORT,
                vol.Optional(CONF_FINGERPRINT): str,
            }
        )
        suggested = user_input or {
            CONF_HOST: entry.data[CONF_HOST],
            CONF_PORT: entry.data[CONF_PORT],
        }
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )


def _is_connected(entry: PiSecureWsConfigEntry) -> bool:
    if entry.state is not ConfigEntryState.LOADED:
        return False
    return bool(entry.runtime_data.connected)


class PiSecureWsOptionsFlow(OptionsFlow):
    """What a user tunes after pairing. Read when used, so no reload is needed."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        if user_input is not None:
            return self.async_create_entry(
                data={
                    CONF_CAMERA_FPS: int(user_input[CONF_CAMERA_FPS]),
                    CONF_REQUEST_TIMEOUT: float(user_input[CONF_REQUEST_TIMEOUT]),
                }
            )
        options = self.config_entry.options
        schema = vol.Schema(
            {
                vol.Required(
                    CONF_CAMERA_FPS, default=options.get(CONF_CAMERA_FPS, DEFAULT_CAMERA_FPS)
                ): NumberSelector(
                    NumberSelectorConfig(
                        min=1, max=MAX_CAMERA_FPS, step=1, mode=NumberSelectorMode.SLIDER
                    )
                ),
                vol.Required(
                    CONF_REQUEST_TIMEOUT,
                    default=options.get(CONF_REQUEST_TIMEOUT, DEFAULT_REQUEST_TIMEOUT),
                ): NumberSelector(
                    NumberSelectorConfig(
                        min=2,
                        max=60,
                        step=1,
                        mode=NumberSelectorMode.BOX,
                        unit_of_measurement="s",
                    )
                ),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)
