"""ReconnectPolicy on a fake clock: back-off, jitter, the restart window, the agent's block."""

from __future__ import annotations

import pytest
from pi_secure_ws_protocol.const import CloseCode
from pi_secure_ws_protocol.errors import (
    Blocked,
    CannotConnect,
    CertificateMismatch,
    InvalidAuth,
    ProtocolError,
    ServerAuthFailed,
)
from pi_secure_ws_protocol.reconnect import RESTART_RETRY, RESTART_WINDOW, ReconnectPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def policy(clock: FakeClock, jitter: float = 1.0) -> ReconnectPolicy:
    # ``jitter`` stands for where uniform(a, b) lands: 0 at a, 1 at b.
    return ReconnectPolicy(
        1.0, 8.0, clock=clock, uniform=lambda low, high: low + (high - low) * jitter
    )


def test_failures_back_off_exponentially_up_to_the_cap() -> None:
    reconnect = policy(FakeClock(), jitter=0.5)  # the middle of +-20 %: no jitter
    delays = [reconnect.delay_after(CannotConnect("down")) for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    reconnect.connected()
    assert reconnect.delay_after(ProtocolError("garbled")) == 1.0


@pytest.mark.parametrize(("jitter", "factor"), [(0.0, 0.8), (1.0, 1.2)])
def test_each_delay_is_jittered_by_a_fifth(jitter: float, factor: float) -> None:
    reconnect = policy(FakeClock(), jitter)
    assert reconnect.delay_after(CannotConnect("down")) == pytest.approx(factor)
    assert reconnect.delay_after(CannotConnect("down")) == pytest.approx(2 * factor)


def test_after_the_agent_said_going_away_retries_are_fast_for_a_while() -> None:
    clock = FakeClock()
    reconnect = policy(clock, jitter=0.5)
    assert reconnect.may_reconnect(CannotConnect("closed (1001)"), CloseCode.GOING_AWAY)
    for _ in range(5):
        assert reconnect.delay_after(CannotConnect("down")) == pytest.approx(RESTART_RETRY)
    clock.now += RESTART_WINDOW
    assert reconnect.delay_after(CannotConnect("down")) == 1.0  # the window is over


def test_a_block_waits_as_long_as_the_agent_said_plus_up_to_a_second() -> None:
    reconnect = policy(FakeClock(), jitter=0.5)
    assert reconnect.delay_after(Blocked(30)) == pytest.approx(30.5)
    # A block neither uses up nor grows the back-off.
    assert reconnect.delay_after(CannotConnect("down")) == 1.0


@pytest.mark.parametrize(
    "error",
    [InvalidAuth("refused"), CertificateMismatch("AA", None), ServerAuthFailed("no proof")],
)
def test_only_a_user_can_fix_these_so_no_retry(error: Exception) -> None:
    assert policy(FakeClock()).delay_after(error) is None


def test_a_session_ended_by_revoked_credentials_is_not_retried() -> None:
    reconnect = policy(FakeClock())
    assert not reconnect.may_reconnect(InvalidAuth("revoked"), CloseCode.CREDENTIALS_REVOKED)
    assert reconnect.may_reconnect(None, CloseCode.NORMAL)
    assert reconnect.may_reconnect(Blocked(1.0), CloseCode.BLOCKED)
