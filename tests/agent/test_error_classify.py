"""classify(): every error the client raises (or a caller meets around it) has one meaning.

The table feeds each error class; the live tests take the errors from a real agent over real TLS,
so the mapping is checked against what the client really raises.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from typing import Any

import pytest
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.errors import (
    Blocked,
    CannotConnect,
    CertificateMismatch,
    CommandError,
    ErrorKind,
    ErrorMeaning,
    InvalidAuth,
    PiSecureWsError,
    ProtocolError,
    Recovery,
    RequestTimeout,
    ServerAuthFailed,
    classify,
    describe_os_error,
)
from pi_secure_ws_testing.agent import RunningAgent

FINGERPRINT = "AB:" * 31 + "CD"

# error, kind, recovery, connect key (pairing form / setup), request key (a failed call)
CASES: list[tuple[Exception, ErrorKind, Recovery, str, str]] = [
    (CannotConnect("connection lost"), ErrorKind.CANNOT_CONNECT, Recovery.RETRY,
     "cannot_connect", "not_connected"),
    (InvalidAuth("refused"), ErrorKind.INVALID_AUTH, Recovery.REAUTH,
     "invalid_auth", "not_connected"),
    (Blocked(12.0), ErrorKind.BLOCKED, Recovery.RETRY, "blocked", "not_connected"),
    (CertificateMismatch(FINGERPRINT, None), ErrorKind.CERTIFICATE_MISMATCH, Recovery.REPAIR,
     "certificate_mismatch", "not_connected"),
    (ServerAuthFailed("no proof"), ErrorKind.SERVER_AUTH_FAILED, Recovery.REPAIR,
     "server_auth_failed", "not_connected"),
    (ProtocolError("bad frame"), ErrorKind.PROTOCOL_ERROR, Recovery.RETRY,
     "cannot_connect", "not_connected"),
    (RequestTimeout("no answer"), ErrorKind.TIMEOUT, Recovery.RETRY, "cannot_connect", "timeout"),
    (CommandError(m.ERR_REFUSED, "rain delay"), ErrorKind.REFUSED, Recovery.NONE,
     "cannot_connect", "refused"),
    (CommandError(m.ERR_INVALID_PARAMS, "brightness"), ErrorKind.REFUSED, Recovery.NONE,
     "cannot_connect", "refused"),
    (CommandError(m.ERR_FORBIDDEN, "admin only"), ErrorKind.FORBIDDEN, Recovery.NONE,
     "cannot_connect", "forbidden"),
    (CommandError(m.ERR_DEVICE_ERROR, "relay"), ErrorKind.COMMAND_FAILED, Recovery.NONE,
     "cannot_connect", "command_failed"),
    (CommandError(m.ERR_RATE_LIMITED, "slow down"), ErrorKind.COMMAND_FAILED, Recovery.NONE,
     "cannot_connect", "command_failed"),
    (CommandError(m.ERR_UNKNOWN_ACTION, "no such action"), ErrorKind.COMMAND_FAILED,
     Recovery.NONE, "cannot_connect", "command_failed"),
    # What callers meet around the client: their own deadline, raw socket and TLS errors.
    (TimeoutError(), ErrorKind.CANNOT_CONNECT, Recovery.RETRY, "cannot_connect", "not_connected"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), ErrorKind.CANNOT_CONNECT,
     Recovery.RETRY, "cannot_connect", "not_connected"),
    (ConnectionResetError(), ErrorKind.CANNOT_CONNECT, Recovery.RETRY,
     "cannot_connect", "not_connected"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), ErrorKind.CANNOT_CONNECT,
     Recovery.RETRY, "cannot_connect", "not_connected"),
    (ssl.SSLError(1, "wrong version number"), ErrorKind.CANNOT_CONNECT, Recovery.RETRY,
     "cannot_connect", "not_connected"),
    (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), ErrorKind.CANNOT_CONNECT,
     Recovery.RETRY, "cannot_connect", "not_connected"),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"),
     ErrorKind.CERTIFICATE_MISMATCH, Recovery.REPAIR, "certificate_mismatch", "not_connected"),
    # Not an error of this protocol: a bug, shown as such.
    (RuntimeError("boom"), ErrorKind.UNKNOWN, Recovery.NONE, "unknown", "not_connected"),
    (ValueError(), ErrorKind.UNKNOWN, Recovery.NONE, "unknown", "not_connected"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("error", "kind", "recovery", "connect_key", "request_key"),
    CASES,
    ids=[f"{type(case[0]).__name__}-{case[1].value}" for case in CASES],
)
def test_every_error_has_one_meaning(
    error: Exception, kind: ErrorKind, recovery: Recovery, connect_key: str, request_key: str
) -> None:
    meaning = classify(error)
    assert (meaning.kind, meaning.recovery) == (kind, recovery)
    assert (meaning.connect_key, meaning.request_key) == (connect_key, request_key)
    assert meaning.message.strip() and meaning.detail.strip()
    assert meaning.unexpected is (kind is ErrorKind.UNKNOWN)
    assert (meaning.retry_after is None) is not isinstance(error, Blocked)
    assert (meaning.retry_after_seconds is None) is not isinstance(error, Blocked)


def test_only_a_refused_login_or_another_agent_stops_retrying() -> None:
    """The rule run() and an entry's session follow: a user must act on these, nothing else."""
    stops = {type(error) for error, *_ in CASES if classify(error).recovery
             in (Recovery.REAUTH, Recovery.REPAIR)}  # fmt: skip
    assert stops == {InvalidAuth, CertificateMismatch, ServerAuthFailed,
                     ssl.SSLCertVerificationError}  # fmt: skip


def test_every_error_class_of_the_package_is_classified() -> None:
    """A new error class must be added to the table above (and given its meaning)."""
    import pi_secure_ws_protocol.errors as errors

    classes = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, PiSecureWsError)
    }
    assert classes - {PiSecureWsError} <= {type(case[0]) for case in CASES}


def test_an_error_class_added_later_is_retried_with_its_own_text() -> None:
    class Newer(PiSecureWsError):
        pass

    meaning = classify(Newer("something new"))
    assert (meaning.kind, meaning.recovery) == (ErrorKind.CANNOT_CONNECT, Recovery.RETRY)
    assert meaning.message == meaning.detail == "something new"


@pytest.mark.parametrize(
    ("retry_after", "seconds"), [(0.0, 1), (0.2, 1), (1.0, 1), (3.4, 4), (59.99, 60)]
)
def test_a_block_says_how_long_in_whole_seconds_never_zero(
    retry_after: float, seconds: int
) -> None:
    meaning = classify(Blocked(retry_after))
    assert meaning.retry_after == retry_after
    assert meaning.retry_after_seconds == seconds
    assert meaning.message == str(Blocked(retry_after))


def test_the_sentences_name_where_and_who() -> None:
    """The CLI's lines, from the error and what the caller knows."""
    where = {"host": "gardenpi.local", "port": 8765, "client_id": "cli"}
    lines = {
        type(error).__name__: classify(error, **where).message
        for error in (
            InvalidAuth("refused"),
            CannotConnect("connection lost"),
            ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
            TimeoutError(),
            ServerAuthFailed("x"),
            RequestTimeout("x"),
            ProtocolError("bad frame"),
            CommandError(m.ERR_DEVICE_ERROR, "relay stuck"),
            CertificateMismatch(FINGERPRINT, "12:34"),
            RuntimeError("boom"),
        )
    }
    assert lines == {
        "InvalidAuth": "invalid auth: the agent refused client id 'cli' with this secret",
        "CannotConnect": "cannot connect to gardenpi.local:8765: connection lost",
        "ConnectionRefusedError": "cannot connect to gardenpi.local:8765: "
        "[Errno 111] Connection refused",
        "TimeoutError": "cannot connect to gardenpi.local:8765: timed out",
        "ServerAuthFailed": "the agent failed to prove it knows this client's verifier: "
        "not the real agent",
        "RequestTimeout": "the agent did not answer in time",
        "ProtocolError": "protocol error: bad frame",
        "CommandError": "command failed: device_error: relay stuck",
        "CertificateMismatch": str(CertificateMismatch(FINGERPRINT, "12:34")),
        "RuntimeError": "unexpected error: RuntimeError: boom",
    }
    # Without the context the sentences still read.
    assert classify(InvalidAuth("x")).message == (
        "invalid auth: the agent refused this client id with this secret"
    )
    assert classify(CannotConnect("lost")).message == "cannot connect: lost"
    assert classify(ssl.SSLCertVerificationError(1, "expired"), **where).message == (
        "certificate check failed to gardenpi.local:8765: expired"
    )


def test_the_detail_is_the_errors_own_text() -> None:
    """What an entry's setup error and a failed call show after their own words."""
    assert classify(CannotConnect("cannot reach x:1: refused")).detail == (
        "cannot reach x:1: refused"
    )
    assert classify(CommandError(m.ERR_REFUSED, "rain delay until 18:00")).detail == (
        "rain delay until 18:00"
    )
    assert classify(CommandError(m.ERR_REFUSED, "")).detail == m.ERR_REFUSED
    assert classify(OSError()).detail == "OSError"
    reset = ConnectionResetError()
    reset.errno = errno.ECONNRESET
    assert classify(reset).detail == f"ConnectionResetError (errno {errno.ECONNRESET})"


def test_meanings_are_values() -> None:
    first, second = classify(Blocked(3)), classify(Blocked(3))
    assert first == second and hash(first) == hash(second)
    with pytest.raises(AttributeError):
        first.kind = ErrorKind.UNKNOWN  # type: ignore[misc]
    assert isinstance(first, ErrorMeaning)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Connection reset by peer", "Connection reset by peer"),
        ("  ", "ConnectionResetError"),
    ],
)
def test_describe_os_error_is_never_empty(text: str, expected: str) -> None:
    assert describe_os_error(ConnectionResetError(text)) == expected


# ---- the errors a real agent makes the client raise ------------------------------------------


async def test_a_wrong_secret_asks_for_a_new_one(agent: RunningAgent) -> None:
    client = agent.client(secret="AAAA-" * 12 + "AAAA", connect_timeout=10)
    with pytest.raises(PiSecureWsError) as caught:
        await client.connect()
    meaning = classify(caught.value, client_id=client.client_id)
    assert (meaning.kind, meaning.recovery) == (ErrorKind.INVALID_AUTH, Recovery.REAUTH)
    assert meaning.message == (
        "invalid auth: the agent refused client id 'homeassistant' with this secret"
    )


async def test_another_agent_asks_for_re_pairing(agent: RunningAgent, agent_factory: Any) -> None:
    async with agent_factory() as impostor:
        client = impostor.client(secret=agent.secret, fingerprint=agent.fingerprint)
        with pytest.raises(PiSecureWsError) as caught:
            await client.connect()
    meaning = classify(caught.value)
    assert (meaning.kind, meaning.recovery) == (ErrorKind.CERTIFICATE_MISMATCH, Recovery.REPAIR)
    assert agent.fingerprint in meaning.message


async def test_a_closed_port_is_retried(agent: RunningAgent) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = agent.client(port=port, connect_timeout=10)
    with pytest.raises(PiSecureWsError) as caught:
        await client.connect()
    meaning = classify(caught.value, host=client.host, port=port)
    assert (meaning.kind, meaning.recovery) == (ErrorKind.CANNOT_CONNECT, Recovery.RETRY)
    assert meaning.message.startswith(f"cannot connect to 127.0.0.1:{port}: ")


async def test_a_request_the_role_forbids_is_the_users_to_fix(agent: RunningAgent) -> None:
    client = await agent.connected_client()
    with pytest.raises(PiSecureWsError) as caught:
        await client.call("system", "reboot")
    meaning = classify(caught.value)
    assert (meaning.kind, meaning.recovery) == (ErrorKind.FORBIDDEN, Recovery.NONE)
    assert meaning.request_key == "forbidden"
    with pytest.raises(PiSecureWsError) as caught:
        await client.call("system", "no_such_action")
    assert classify(caught.value).request_key == "command_failed"


async def test_a_deadline_around_connect_is_retried(agent: RunningAgent) -> None:
    """The config flow's own timeout around connect(): a login that never finishes."""
    held: list[asyncio.StreamWriter] = []  # accepted and never answered
    server = await asyncio.start_server(lambda _, writer: held.append(writer), "127.0.0.1", 0)
    async with server:
        client = agent.client(port=server.sockets[0].getsockname()[1], connect_timeout=30)
        with pytest.raises(TimeoutError) as caught:
            async with asyncio.timeout(0.5):
                await client.connect()
        await client.close()
        for writer in held:
            writer.close()
    meaning = classify(caught.value, host="127.0.0.1", port=1)
    assert (meaning.kind, meaning.recovery) == (ErrorKind.CANNOT_CONNECT, Recovery.RETRY)
    assert meaning.connect_key == "cannot_connect"
