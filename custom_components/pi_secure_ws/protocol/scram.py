"""SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) with tls-server-end-point channel binding (RFC 5929).

A thin layer over ``scramp``: it fixes the mechanism and channel binding, hides unknown client ids
behind a fake verifier (no user enumeration) and turns every scramp failure into one exception
type, so callers never see a library traceback.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from scramp import ScramClient, ScramException, ScramMechanism

from .const import CHANNEL_BINDING, MECHANISM
from .secret import normalize_secret

# The secret is 256 random bits, so stretching adds nothing against guessing; the RFC 7677 minimum
# keeps the client's cost at a few milliseconds on a Pi.
ITERATIONS = 4096
_MECHANISM = ScramMechanism(MECHANISM)


class ScramFailed(Exception):
    """The exchange failed: bad proof, malformed message, wrong channel binding."""


@dataclass(frozen=True)
class Verifier:
    """What the agent stores instead of a secret."""

    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


def make_verifier(secret: str, iterations: int = ITERATIONS) -> Verifier:
    salt, stored_key, server_key, count = _MECHANISM.make_auth_info(
        normalize_secret(secret), iteration_count=iterations
    )
    return Verifier(salt, stored_key, server_key, count)


def fake_verifier(client_id: str, server_secret: bytes) -> Verifier:
    """A stable verifier for an unknown client id, so its answer looks like a real client's.

    Salt and keys are derived from a per-agent secret: the same id always gets the same salt (a
    changing salt would reveal that the id is unknown), and no proof can match the keys.
    """
    seed = hmac.new(server_secret, client_id.encode(), hashlib.sha256).digest()
    return Verifier(
        salt=seed,  # 32 bytes, as scramp's real salts: a shorter one would give the id away
        stored_key=hashlib.sha256(seed + b"stored").digest(),
        server_key=hashlib.sha256(seed + b"server").digest(),
        iterations=ITERATIONS,
    )


# Returns (verifier, known) for a client id; unknown ids get fake_verifier() and known=False.
Lookup = Callable[[str], tuple["Verifier", bool]]


class ServerExchange:
    """The agent's side of one login."""

    def __init__(self, cbind_data: bytes, lookup: Lookup) -> None:
        self._lookup = lookup
        self.client_id: str | None = None
        self.known = False
        try:
            self._server = _MECHANISM.make_server(self._auth_fn, (CHANNEL_BINDING, cbind_data))
        except ScramException as err:  # pragma: no cover - only on a broken certificate
            raise ScramFailed(str(err)) from None

    def _auth_fn(self, username: str) -> tuple[bytes, bytes, bytes, int]:
        self.client_id = username
        verifier, self.known = self._lookup(username)
        return verifier.salt, verifier.stored_key, verifier.server_key, verifier.iterations

    def server_first(self, client_first: str) -> str:
        try:
            self._server.set_client_first(client_first)
            return str(self._server.get_server_first())
        except ScramException as err:
            raise ScramFailed(_reason(err)) from None

    def server_final(self, client_final: str) -> str:
        """Check the client's proof and channel binding; return the agent's proof."""
        try:
            self._server.set_client_final(client_final)
            return str(self._server.get_server_final())
        except ScramException as err:
            raise ScramFailed(_reason(err)) from None


class ClientExchange:
    """A client's side of one login."""

    def __init__(self, client_id: str, secret: str, cbind_data: bytes) -> None:
        try:
            self._client = ScramClient(
                [MECHANISM],
                client_id,
                normalize_secret(secret),
                channel_binding=(CHANNEL_BINDING, cbind_data),
            )
        except ScramException as err:
            raise ScramFailed(_reason(err)) from None

    def client_first(self) -> str:
        return str(self._client.get_client_first())

    def client_final(self, server_first: str) -> str:
        try:
            self._client.set_server_first(server_first)
            return str(self._client.get_client_final())
        except ScramException as err:
            raise ScramFailed(_reason(err)) from None

    def verify_server_final(self, server_final: str) -> None:
        """Raise ScramFailed unless the agent proved it holds this client's verifier."""
        try:
            self._client.set_server_final(server_final)
        except ScramException as err:
            raise ScramFailed(_reason(err)) from None


def _reason(err: ScramException) -> str:
    return str(err.args[0]) if err.args else "SCRAM exchange failed"
