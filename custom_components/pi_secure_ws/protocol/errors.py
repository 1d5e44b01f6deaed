"""Typed errors of the pi_secure_ws client library."""

from __future__ import annotations


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
