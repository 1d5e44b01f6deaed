"""A blocked address learns that it is blocked and for how long, on every try a person makes."""

from __future__ import annotations

import asyncio

import pytest
from pi_secure_ws_protocol.errors import Blocked, CannotConnect, InvalidAuth, describe_os_error
from pi_secure_ws_protocol.secret import generate_secret
from pi_secure_ws_testing.agent import AgentFactory, RunningAgent

BLOCKING = """
[blocklist]
threshold = 1
base_delay = 60.0
remind_every = 0.5
"""


async def try_login(agent: RunningAgent, secret: str | None = None) -> Exception:
    client = agent.client(secret=secret)
    try:
        await client.connect()
    except (Blocked, CannotConnect, InvalidAuth) as err:
        return err
    finally:
        await client.close()
    raise AssertionError("the login worked")


async def test_every_retry_after_the_reminder_interval_is_told(agent_factory: AgentFactory) -> None:
    async with agent_factory(BLOCKING) as agent:
        assert isinstance(await try_login(agent, generate_secret()), InvalidAuth)
        first = await try_login(agent)
        assert isinstance(first, Blocked)
        assert 50 <= first.retry_after <= 60
        # Straight after: dropped before TLS, and the message says what that probably means.
        dropped = await try_login(agent)
        assert isinstance(dropped, CannotConnect)
        assert "blocked" in str(dropped)
        assert not str(dropped).rstrip().endswith(":")
        # A person trying again a little later hears it again, with the time left.
        await asyncio.sleep(0.6)
        again = await try_login(agent)
        assert isinstance(again, Blocked), again
        assert again.retry_after <= first.retry_after


async def test_a_flood_costs_one_handshake_per_reminder(agent_factory: AgentFactory) -> None:
    async with agent_factory(BLOCKING.replace("0.5", "3600")) as agent:
        await try_login(agent, generate_secret())
        answers = [await try_login(agent) for _ in range(20)]
        assert isinstance(answers[0], Blocked)
        assert all(isinstance(a, CannotConnect) for a in answers[1:]), answers


@pytest.mark.parametrize("reason", ["", "   "])
def test_no_message_ends_in_an_empty_reason(reason: str) -> None:
    text = describe_os_error(ConnectionResetError(reason))
    assert text.strip()
