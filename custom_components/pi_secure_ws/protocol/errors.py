"""Typed errors of the pi_secure_ws client library, and what each of them means.

:func:`classify` is the one mapping from an error to its meaning (retry, ask for a new secret,
re-pair, or tell whoever asked): the config flow, an entry's setup and session, and the CLI each
turn that meaning into their own words instead of mapping the errors again.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from .const import ERR_FORBIDDEN, ERR_INVALID_PARAMS, ERR_REFUSED, CloseCode

if TYPE_CHECKING:
    from websockets.exceptions import ConnectionClosed


class PiSecureWsError(Exception):
    """Base class of every error this package raises."""


class CannotConnect(PiSecureWsError):
    """The agent could not be reached, or the connection dropped."""


class InvalidAuth(PiSecureWsError):
    """The agent refused the login: wrong secret, unknown or removed client id.

    Clients must not retry on their own after this: retries would only trip the block list.
    """


class Blocked(PiSecureWsError):
    """The agent refuses this source address for now after too many failed logins."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"blocked by the agent after failed logins; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


class CertificateMismatch(PiSecureWsError):
    """The agent's certificate authority is not the pinned one: possibly a man in the middle."""

    def __init__(self, expected: str, actual: str | None) -> None:
        super().__init__(
            f"certificate mismatch: pinned CA fingerprint {expected}, agent presented "
            f"{actual or 'a certificate not signed by the pinned CA'}"
        )
        self.expected = expected
        self.actual = actual


class ServerAuthFailed(PiSecureWsError):
    """The agent failed to prove it knows the client's verifier: not the real agent."""


class ProtocolError(PiSecureWsError):
    """The peer sent something this protocol does not allow."""


class CommandError(PiSecureWsError):
    """The agent answered a request with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RequestTimeout(PiSecureWsError):
    """The agent did not answer a request in time."""


# ---- what an error means -------------------------------------------------------------------------
#
# One answer for every caller (the config flow, the entry's setup, its session, the CLI), so that
# each of them only turns the meaning into its own vocabulary.


class ErrorKind(StrEnum):
    """What went wrong. The values are the integration's translation keys where one exists."""

    CANNOT_CONNECT = "cannot_connect"  # unreachable, dropped, not an agent, timed out connecting
    INVALID_AUTH = "invalid_auth"  # wrong secret, unknown, removed or revoked client id
    BLOCKED = "blocked"  # this address is blocked for now after failed logins
    CERTIFICATE_MISMATCH = "certificate_mismatch"  # not the pinned CA: maybe a man in the middle
    SERVER_AUTH_FAILED = "server_auth_failed"  # the agent could not prove it knows this client
    PROTOCOL_ERROR = "protocol_error"  # the peer broke the protocol
    TIMEOUT = "timeout"  # no answer to a request in time
    REFUSED = "refused"  # the agent understood a request and said no (limits, bad parameters)
    FORBIDDEN = "forbidden"  # the session's role does not allow the request
    COMMAND_FAILED = "command_failed"  # the agent or device failed to carry a request out
    UNKNOWN = "unknown"  # not an error of this protocol: a bug; log it with its traceback


class Recovery(StrEnum):
    """What a caller does next."""

    RETRY = "retry"  # transient: connect again later, not before ``retry_after`` when given
    REAUTH = "reauth"  # only a new secret or client id helps; retrying would trip the block list
    REPAIR = "repair"  # the peer is not the paired agent: only the user can decide (re-pair)
    NONE = "none"  # the session is fine, one request failed (or a bug): tell whoever asked


# The connect failures a pairing form or an entry's setup shows under their own key; every other
# connect failure is shown as "cannot_connect".
_CONNECT_KEYS = frozenset(
    {
        ErrorKind.INVALID_AUTH,
        ErrorKind.BLOCKED,
        ErrorKind.CERTIFICATE_MISMATCH,
        ErrorKind.SERVER_AUTH_FAILED,
        ErrorKind.UNKNOWN,
    }
)
_REQUEST_KEYS = frozenset(
    {ErrorKind.TIMEOUT, ErrorKind.REFUSED, ErrorKind.FORBIDDEN, ErrorKind.COMMAND_FAILED}
)


@dataclass(frozen=True)
class ErrorMeaning:
    """The meaning of one error; made by :func:`classify`."""

    kind: ErrorKind
    recovery: Recovery
    message: str  # one sentence for a person (the CLI's line, a log line); never empty
    detail: str  # the error's own text, without the sentence around it; never empty
    # Blocked: seconds the agent refuses this address; no login before then.
    retry_after: float | None = None

    @property
    def retry_after_seconds(self) -> int | None:
        """``retry_after`` as whole seconds to show, at least 1 (a wait of "0 s" reads wrong)."""
        if self.retry_after is None:
            return None
        return max(1, math.ceil(self.retry_after))

    @property
    def connect_key(self) -> str:
        """The key of a failed connect or login: a pairing form's error, an entry's setup error."""
        return self.kind.value if self.kind in _CONNECT_KEYS else ErrorKind.CANNOT_CONNECT.value

    @property
    def request_key(self) -> str:
        """The key of a failed request: a session that is not up is "not_connected"."""
        return self.kind.value if self.kind in _REQUEST_KEYS else "not_connected"

    @property
    def unexpected(self) -> bool:
        """True for a bug, not a failure of the agent or the network: log its traceback."""
        return self.kind is ErrorKind.UNKNOWN


def classify(
    error: Exception,
    *,
    host: str | None = None,
    port: int | None = None,
    client_id: str | None = None,
) -> ErrorMeaning:
    """What ``error`` (raised by AgentClient, or met around it) means for whoever called.

    ``host``, ``port`` and ``client_id`` only complete the sentence ("cannot connect to
    gardenpi:8765: ...").
    """
    detail = describe_os_error(error)
    where = f" to {host}:{port}" if host is not None and port is not None else ""
    who = f"client id {client_id!r}" if client_id is not None else "this client id"
    if isinstance(error, CommandError):
        detail = error.message or error.code
        kind = _COMMAND_KINDS.get(error.code, ErrorKind.COMMAND_FAILED)
        return ErrorMeaning(kind, Recovery.NONE, f"command failed: {error}", detail)
    if isinstance(error, Blocked):
        return ErrorMeaning(
            ErrorKind.BLOCKED, Recovery.RETRY, str(error), detail, retry_after=error.retry_after
        )
    if isinstance(error, InvalidAuth):
        message = f"invalid auth: the agent refused {who} with this secret"
        return ErrorMeaning(ErrorKind.INVALID_AUTH, Recovery.REAUTH, message, detail)
    if isinstance(error, CertificateMismatch):
        return ErrorMeaning(ErrorKind.CERTIFICATE_MISMATCH, Recovery.REPAIR, detail, detail)
    if isinstance(error, ssl.SSLCertVerificationError):
        # Only met outside AgentClient (which raises CertificateMismatch): a TLS check refused.
        message = f"certificate check failed{where}: {detail}"
        return ErrorMeaning(ErrorKind.CERTIFICATE_MISMATCH, Recovery.REPAIR, message, detail)
    if isinstance(error, ServerAuthFailed):
        message = "the agent failed to prove it knows this client's verifier: not the real agent"
        return ErrorMeaning(ErrorKind.SERVER_AUTH_FAILED, Recovery.REPAIR, message, detail)
    if isinstance(error, RequestTimeout):
        message = "the agent did not answer in time"
        return ErrorMeaning(ErrorKind.TIMEOUT, Recovery.RETRY, message, detail)
    if isinstance(error, ProtocolError):
        return ErrorMeaning(
            ErrorKind.PROTOCOL_ERROR, Recovery.RETRY, f"protocol error: {detail}", detail
        )
    if isinstance(error, CannotConnect | OSError):
        if isinstance(error, TimeoutError) and not str(error).strip():
            # A deadline around connect() (asyncio.timeout): the login never finished.
            detail = "timed out"
        message = f"cannot connect{where}: {detail}"
        return ErrorMeaning(ErrorKind.CANNOT_CONNECT, Recovery.RETRY, message, detail)
    if isinstance(error, PiSecureWsError):
        # A subclass added later and not classified here yet: its own text, retried like a
        # dropped connection (never a login refused, those are classified above).
        return ErrorMeaning(ErrorKind.CANNOT_CONNECT, Recovery.RETRY, detail, detail)
    message = f"unexpected error: {type(error).__name__}: {detail}"
    return ErrorMeaning(ErrorKind.UNKNOWN, Recovery.NONE, message, detail)


_COMMAND_KINDS: Final[Mapping[str, ErrorKind]] = {
    # The agent understood and said no (over a limit, a rain delay, bad parameters): the user's.
    ERR_REFUSED: ErrorKind.REFUSED,
    ERR_INVALID_PARAMS: ErrorKind.REFUSED,
    ERR_FORBIDDEN: ErrorKind.FORBIDDEN,
}


def describe_os_error(err: BaseException) -> str:
    """The reason an error gives, or what it is when it gives none: never an empty string."""
    text = str(err).strip()
    if text:
        return text
    errno = getattr(err, "errno", None)
    return f"{type(err).__name__} (errno {errno})" if errno else type(err).__name__


# ---- close codes ---------------------------------------------------------------------------------


def error_for_close(code: int | None, reason: str | None = None) -> PiSecureWsError:
    """The error an agent's close code means; None: the connection ended without a close frame."""
    if code is None:
        return CannotConnect("connection to the agent lost")
    if code == CloseCode.INVALID_AUTH:
        return InvalidAuth(reason or "the agent refused the login")
    if code == CloseCode.CREDENTIALS_REVOKED:
        return InvalidAuth(reason or "this client's credentials were revoked on the agent")
    if code == CloseCode.BLOCKED:
        return Blocked(1.0)
    if code == CloseCode.PROTOCOL_ERROR:
        return ProtocolError(reason or "the agent reported a protocol error")
    return CannotConnect(
        f"connection closed by the agent ({code}{': ' + reason if reason else ''})"
    )


def closed_error(err: ConnectionClosed) -> PiSecureWsError:
    """The error of a connection websockets reports closed: by the agent's close frame, if any."""
    frame = err.rcvd
    return error_for_close(None) if frame is None else error_for_close(frame.code, frame.reason)
