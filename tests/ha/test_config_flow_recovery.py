"""Every error of every step of the config flows, recovered from in the same flow.

Each case makes one step fail in one way against a real agent, checks the form says so, removes
the cause (the user corrects the input, or the Pi's owner fixes the agent, or the block runs
out), submits again and gets the entry created or updated. The step ids and error keys are the
ones config_flow.py can return; test_hassfest_like checks each has a text.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, SOURCE_ZEROCONF, ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pi_secure_ws_protocol.errors import InvalidAuth
from pi_secure_ws_protocol.secret import generate_secret
from pi_secure_ws_testing.agent import RunningAgent, free_port, running_agent
from pi_secure_ws_testing.ha import agent_id, entry_data, zeroconf_info
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_secure_ws.const import (
    CONF_CLIENT_ID,
    CONF_FINGERPRINT,
    CONF_SECRET,
    DOMAIN,
)

# Two failed logins block the source, for a moment only, so a case can wait the block out.
RECOVERY_TOML = """
[blocklist]
threshold = 2
base_delay = 0.3
max_delay = 0.3
"""
WRONG_FINGERPRINT = "AB:" * 31 + "AB"


@pytest.fixture
def agent_toml() -> str:
    return RECOVERY_TOML


@dataclass
class Case:
    """What a fault needs: the agent, the test's stack and monkeypatch, notes for the fix."""

    agent: RunningAgent
    stack: AsyncExitStack
    monkeypatch: pytest.MonkeyPatch
    notes: dict[str, Any] = field(default_factory=dict)


# A fault: (error key, field it is shown on, what breaks before the submit (returns input
# overrides), what repairs it before the next submit).
Inject = Callable[[Case], Awaitable[dict[str, Any]]]
Fix = Callable[[Case], Awaitable[None]]


async def no_fix(case: Case) -> None:
    return None


async def stop_agent(case: Case) -> dict[str, Any]:
    case.notes["port"] = case.agent.port
    await case.agent.app.stop()
    return {}


async def start_agent_again(case: Case) -> None:
    await case.stack.enter_async_context(
        running_agent(case.agent.config_dir, prepared=True, port=case.notes["port"])
    )


async def wrong_secret(case: Case) -> dict[str, Any]:
    return {CONF_SECRET: generate_secret()}  # well formed, so the agent is asked, and refuses it


async def malformed_secret(case: Case) -> dict[str, Any]:
    return {CONF_SECRET: "AAAA-BBBB-CCCC"}  # refused in the form, before anything is sent


async def wrong_port(case: Case) -> dict[str, Any]:
    return {CONF_PORT: free_port()}


async def wrong_fingerprint(case: Case) -> dict[str, Any]:
    return {CONF_FINGERPRINT: WRONG_FINGERPRINT}


async def malformed_fingerprint(case: Case) -> dict[str, Any]:
    return {CONF_FINGERPRINT: "12:34"}


async def block_our_address(case: Case) -> dict[str, Any]:
    """Someone at Home Assistant's address failed to log in twice (threshold 2)."""
    for _ in range(2):
        with pytest.raises(InvalidAuth):
            await case.agent.client(secret="AAAA-BBBB-CCCC").connect()
    return {}


async def wait_out_the_block(case: Case) -> None:
    await asyncio.sleep(0.6)


async def break_server_key(case: Case) -> dict[str, Any]:
    """The agent checks our proof but cannot prove itself (a restored wrong backup)."""
    clients_file = case.agent.config_dir / "clients.json"
    case.notes["clients"] = clients_file.read_text()
    document = json.loads(case.notes["clients"])
    document["clients"]["homeassistant"]["server_key"] = "A" * 43 + "="
    clients_file.write_text(json.dumps(document))
    case.agent.app.reload_clients()
    return {}


async def restore_server_key(case: Case) -> None:
    (case.agent.config_dir / "clients.json").write_text(case.notes["clients"])
    case.agent.app.reload_clients()


async def break_tls(case: Case) -> dict[str, Any]:
    """A fault no typed error covers, injected below our code (a broken OpenSSL)."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated OpenSSL fault")

    case.monkeypatch.setattr(ssl, "SSLContext", broken)
    return {}


async def repair_tls(case: Case) -> None:
    case.monkeypatch.undo()


FAULTS: dict[str, tuple[str, str, Inject, Fix]] = {
    "agent_down": ("cannot_connect", "base", stop_agent, start_agent_again),
    "wrong_port": ("cannot_connect", "base", wrong_port, no_fix),
    "wrong_secret": ("invalid_auth", "base", wrong_secret, no_fix),
    "malformed_secret": ("invalid_secret", CONF_SECRET, malformed_secret, no_fix),
    "blocked": ("blocked", "base", block_our_address, wait_out_the_block),
    "server_key": ("server_auth_failed", "base", break_server_key, restore_server_key),
    "unexpected": ("unknown", "base", break_tls, repair_tls),
    "wrong_fingerprint": ("certificate_mismatch", "base", wrong_fingerprint, no_fix),
    "malformed_fingerprint": (
        "invalid_fingerprint",
        CONF_FINGERPRINT,
        malformed_fingerprint,
        no_fix,
    ),
}

# Which faults each step can meet: it has the field, or it logs in.
STEP_FAULTS = {
    "user": [
        "agent_down",
        "wrong_port",
        "wrong_secret",
        "malformed_secret",
        "blocked",
        "server_key",
        "unexpected",
        "wrong_fingerprint",
        "malformed_fingerprint",
    ],
    "zeroconf_confirm": [
        "agent_down",
        "wrong_secret",
        "malformed_secret",
        "blocked",
        "server_key",
        "unexpected",
    ],
    "reauth_confirm": [
        "agent_down",
        "wrong_secret",
        "malformed_secret",
        "blocked",
        "server_key",
        "unexpected",
    ],
    "reconfigure": [
        "agent_down",
        "wrong_port",
        "blocked",
        "server_key",
        "unexpected",
        "wrong_fingerprint",
        "malformed_fingerprint",
    ],
}


def good_input(step: str, agent: RunningAgent) -> dict[str, Any]:
    return {
        "user": {
            CONF_HOST: agent.host,
            CONF_PORT: agent.port,
            CONF_SECRET: agent.secret,
            CONF_CLIENT_ID: "homeassistant",
        },
        "zeroconf_confirm": {CONF_SECRET: agent.secret},
        "reauth_confirm": {CONF_SECRET: agent.secret, CONF_CLIENT_ID: "homeassistant"},
        "reconfigure": {CONF_HOST: agent.host, CONF_PORT: agent.port},
    }[step]


async def start_flow(
    hass: HomeAssistant, step: str, agent: RunningAgent
) -> tuple[str, MockConfigEntry | None]:
    entry: MockConfigEntry | None = None
    if step == "user":
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    elif step == "zeroconf_confirm":
        result = await hass.config_entries.flow.async_init(
            DOMAIN,
            context={"source": SOURCE_ZEROCONF},
            data=zeroconf_info(agent, agent_id=agent_id(agent)),
        )
    else:
        data = entry_data(agent)
        if step == "reauth_confirm":
            data[CONF_SECRET] = "THE-OLD-SECRET"
        entry = MockConfigEntry(
            domain=DOMAIN, title="Test Pi", unique_id=agent_id(agent), data=data
        )
        entry.add_to_hass(hass)
        if step == "reauth_confirm":
            result = await entry.start_reauth_flow(hass)
        else:
            result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step
    return str(result["flow_id"]), entry


CASES = [(step, fault) for step, faults in STEP_FAULTS.items() for fault in faults]


@pytest.mark.parametrize(("step", "fault"), CASES, ids=[f"{s}-{f}" for s, f in CASES])
async def test_an_error_then_the_fix_then_success(
    hass: HomeAssistant,
    agent: RunningAgent,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    fault: str,
) -> None:
    error, error_field, inject, fix = FAULTS[fault]
    async with AsyncExitStack() as stack:
        case = Case(agent, stack, monkeypatch)
        flow_id, entry = await start_flow(hass, step, agent)
        fixed = good_input(step, agent)

        overrides = await inject(case)
        result = await hass.config_entries.flow.async_configure(flow_id, fixed | overrides)
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == step
        assert result["errors"] == {error_field: error}

        await fix(case)
        result = await hass.config_entries.flow.async_configure(flow_id, fixed)
        if step in ("user", "zeroconf_confirm"):
            assert result["type"] is FlowResultType.FORM
            assert result["step_id"] == "confirm"
            assert result["description_placeholders"]["fingerprint"] == agent.fingerprint
            result = await hass.config_entries.flow.async_configure(flow_id, {})
            assert result["type"] is FlowResultType.CREATE_ENTRY
            assert result["data"] == entry_data(agent)
            entry = result["result"]
        else:
            assert entry is not None
            assert result["type"] is FlowResultType.ABORT
            assert result["reason"] == f"{step.removesuffix('_confirm')}_successful"
            assert entry.data == entry_data(agent)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        assert await hass.config_entries.async_unload(entry.entry_id)
