"""Pairing keeps what the user typed and never spends a login on a secret that cannot be one."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, SOURCE_ZEROCONF
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType
from pi_secure_ws_testing.agent import RunningAgent
from pi_secure_ws_testing.ha import agent_id, mock_entry, user_input, zeroconf_info

from custom_components.pi_secure_ws.const import CONF_CLIENT_ID, CONF_SECRET, DOMAIN
from custom_components.pi_secure_ws.protocol.secret import (
    SECRET_LENGTH,
    generate_secret,
    is_well_formed_secret,
)

# Blocks after three failed logins: a typo that reached the agent would show.
FLOW_TOML = """
[blocklist]
threshold = 3
base_delay = 30.0
"""

MALFORMED = [
    "hello",
    "",
    "    ",
    "A" * (SECRET_LENGTH - 1),
    "A" * (SECRET_LENGTH + 1),
    "0" * SECRET_LENGTH,  # 0, 1, 8 and 9 are not base32
    "A" * (SECRET_LENGTH - 1) + "!",
]


@pytest.fixture
def agent_toml() -> str:
    return FLOW_TOML


def suggested(result: FlowResult) -> dict[str, Any]:
    return {
        str(key): (key.description or {}).get("suggested_value")
        for key in result["data_schema"].schema
    }


def test_well_formed_secrets() -> None:
    secret = generate_secret()
    assert len(secret.replace("-", "")) == SECRET_LENGTH
    for variant in (secret, secret.lower(), secret.replace("-", ""), secret.replace("-", " ")):
        assert is_well_formed_secret(f"  {variant}\n")
    for text in MALFORMED:
        assert not is_well_formed_secret(text), text


async def test_malformed_secret_refused_before_any_login(
    hass: HomeAssistant, agent: RunningAgent
) -> None:
    """More malformed secrets than the block threshold, then the right one still pairs."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    flow_id = result["flow_id"]
    for text in MALFORMED:
        typed = user_input(agent, **{CONF_SECRET: text, CONF_CLIENT_ID: "homeassistant "})
        result = await hass.config_entries.flow.async_configure(flow_id, typed)
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {CONF_SECRET: "invalid_secret"}
        assert suggested(result) == {
            CONF_HOST: agent.host,
            CONF_PORT: agent.port,
            CONF_SECRET: text,
            CONF_CLIENT_ID: "homeassistant ",
            "fingerprint": None,
        }
    # Pasted in lower case with spaces: the same secret.
    pasted = agent.secret.lower().replace("-", " ")
    result = await hass.config_entries.flow.async_configure(
        flow_id, user_input(agent, **{CONF_SECRET: pasted})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "confirm"


async def test_fingerprint_shown_in_whole_groups(hass: HomeAssistant, agent: RunningAgent) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(agent))
    assert result["step_id"] == "confirm"
    rows = result["description_placeholders"]["fingerprint_rows"].split("\n")
    assert [len(row.split(":")) for row in rows] == [8, 8, 8, 8]
    assert ":".join(rows) == agent.fingerprint


async def test_zeroconf_keeps_secret_and_refuses_malformed(
    hass: HomeAssistant, agent: RunningAgent
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_ZEROCONF},
        data=zeroconf_info(agent, agent_id=agent_id(agent)),
    )
    flow_id = result["flow_id"]
    for _ in range(4):
        result = await hass.config_entries.flow.async_configure(flow_id, {CONF_SECRET: "hello"})
        assert result["errors"] == {CONF_SECRET: "invalid_secret"}
        assert suggested(result) == {CONF_SECRET: "hello"}
    wrong = generate_secret()
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_SECRET: wrong})
    assert result["errors"] == {"base": "invalid_auth"}
    assert suggested(result) == {CONF_SECRET: wrong}
    result = await hass.config_entries.flow.async_configure(flow_id, {CONF_SECRET: agent.secret})
    assert result["step_id"] == "confirm"


async def test_reauth_keeps_input_and_refuses_malformed(
    hass: HomeAssistant, agent: RunningAgent
) -> None:
    entry = mock_entry(agent, {CONF_SECRET: generate_secret()})
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    typed = {CONF_SECRET: "hello", CONF_CLIENT_ID: "admin"}
    for _ in range(4):
        result = await hass.config_entries.flow.async_configure(result["flow_id"], typed)
        assert result["errors"] == {CONF_SECRET: "invalid_secret"}
        assert suggested(result) == typed
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SECRET: agent.secret, CONF_CLIENT_ID: "homeassistant"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
