"""SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) with tls-server-end-point channel binding (RFC 5929).

The agent's side is a thin layer over ``scramp``: it fixes the mechanism and channel binding, hides
unknown client ids behind a fake verifier (no user enumeration) and turns every scramp failure into
one exception type, so callers never see a library traceback. The client's side is written here so
it can reuse its derived keys across reconnects (ClientExchange says why).

scramp is imported only by the agent's side, when first used: Home Assistant runs only the
client's side and so never needs scramp installed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from .const import CHANNEL_BINDING, MECHANISM
from .secret import normalize_secret

# The secret is 256 random bits, so stretching adds nothing against guessing; the RFC 7677 minimum
# keeps the client's cost at a few milliseconds on a Pi.
ITERATIONS = 4096
# The agent issues every verifier with ITERATIONS; a client refuses more than 16 times that, which
# bounds what a fake agent can make it compute (about 30 ms of PBKDF2 on a desktop, and always off
# Home Assistant's event loop: see AgentClient._login).
MAX_ITERATIONS = 16 * ITERATIONS
_GS2_HEADER = f"p={CHANNEL_BINDING},,"

if TYPE_CHECKING:
    from scramp import ScramMechanism


@cache
def _mechanism() -> ScramMechanism:
    from scramp import ScramMechanism

    return ScramMechanism(MECHANISM)


def _scram_exception() -> type[Exception]:
    from scramp import ScramException

    exception: type[Exception] = ScramException
    return exception


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
    salt, stored_key, server_key, count = _mechanism().make_auth_info(
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
        self._scram_exception = _scram_exception()
        try:
            self._server = _mechanism().make_server(self._auth_fn, (CHANNEL_BINDING, cbind_data))
        except self._scram_exception as err:  # pragma: no cover - only on a broken certificate
            raise ScramFailed(str(err)) from None

    def _auth_fn(self, username: str) -> tuple[bytes, bytes, bytes, int]:
        self.client_id = username
        verifier, self.known = self._lookup(username)
        return verifier.salt, verifier.stored_key, verifier.server_key, verifier.iterations

    def server_first(self, client_first: str) -> str:
        try:
            self._server.set_client_first(client_first)
            return str(self._server.get_server_first())
        except self._scram_exception as err:
            raise ScramFailed(_reason(err)) from None

    def server_final(self, client_final: str) -> str:
        """Check the client's proof and channel binding; return the agent's proof."""
        try:
            self._server.set_client_final(client_final)
            return str(self._server.get_server_final())
        except self._scram_exception as err:
            raise ScramFailed(_reason(err)) from None


@dataclass(frozen=True)
class ClientKeys:
    """What a client derives from its secret for one salt and iteration count.

    RFC 5802 section 5.1 lets a client cache these across logins to the same server, which
    reuses its salt: a reconnect then costs two HMACs instead of a 4096-round PBKDF2. They prove
    the same as the secret does, so they are kept only in memory, next to the secret itself.
    """

    salt: bytes
    iterations: int
    client_key: bytes
    stored_key: bytes
    server_key: bytes


def derive_client_keys(password: str, salt: bytes, iterations: int) -> ClientKeys:
    """SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i), and the keys made from it."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    return ClientKeys(
        salt=salt,
        iterations=iterations,
        client_key=client_key,
        stored_key=hashlib.sha256(client_key).digest(),
        server_key=hmac.digest(salted, b"Server Key", "sha256"),
    )


class ClientExchange:
    """A client's side of one login.

    Written here rather than through scramp's ScramClient because scramp recomputes PBKDF2 on
    every login and has no way to take cached keys (see ClientKeys). It does only what this
    protocol uses: SCRAM-SHA-256-PLUS with tls-server-end-point. The agent's side stays on
    scramp, so every login checks this code against scramp; tests also compare its messages with
    ScramClient's byte for byte.

    SASLprep maps printable ASCII to itself, and client ids and normalised secrets are printable
    ASCII, so they are used as they are; anything else is refused instead of being prepared.
    """

    def __init__(
        self,
        client_id: str,
        secret: str,
        cbind_data: bytes,
        *,
        keys: ClientKeys | None = None,
        nonce: str | None = None,
    ) -> None:
        password = normalize_secret(secret)
        if not _is_printable_ascii(client_id) or not client_id:
            raise ScramFailed("the client id must be printable ASCII")
        if not _is_printable_ascii(password) or not password:
            raise ScramFailed("the secret is not in the form the agent issues")
        if not cbind_data:
            raise ScramFailed("no channel binding data")
        self._password = password
        self._cbind_data = cbind_data
        self.keys = keys
        self._nonce = secrets.token_hex(32) if nonce is None else nonce
        if not _is_nonce(self._nonce):
            raise ScramFailed("invalid client nonce")
        username = client_id.replace("=", "=3D").replace(",", "=2C")
        self._client_first_bare = f"n={username},r={self._nonce}"
        self._server_signature: bytes | None = None
        self._stage = 0

    def _advance(self, stage: int) -> None:
        if self._stage != stage - 1:
            raise ScramFailed("SCRAM messages out of order")
        self._stage = stage

    def client_first(self) -> str:
        self._advance(1)
        return _GS2_HEADER + self._client_first_bare

    def keys_needed(self, server_first: str) -> tuple[bytes, int] | None:
        """The (salt, iterations) ``client_final`` would stretch the secret for, None when the
        cached keys serve. Lets the caller run ``derive_keys`` in a thread: PBKDF2 must not
        block an event loop. Raises ScramFailed for a message ``client_final`` would refuse."""
        _nonce, salt, iterations = self._check_server_first(server_first)
        keys = self.keys
        if keys is not None and keys.salt == salt and keys.iterations == iterations:
            return None
        return salt, iterations

    def derive_keys(self, salt: bytes, iterations: int) -> None:
        """Stretch the secret for ``salt`` (thread-safe: touches nothing but ``self.keys``)."""
        if not ITERATIONS <= iterations <= MAX_ITERATIONS:
            raise ScramFailed(
                f"iteration count {iterations} outside {ITERATIONS}..{MAX_ITERATIONS}"
            )
        self.keys = derive_client_keys(self._password, salt, iterations)

    def client_final(self, server_first: str) -> str:
        """Check the agent's first message; return the client's proof."""
        self._advance(2)
        nonce, salt, iterations = self._check_server_first(server_first)
        keys = self.keys
        if keys is None or keys.salt != salt or keys.iterations != iterations:
            keys = self.keys = derive_client_keys(self._password, salt, iterations)
        cbind_input = _GS2_HEADER.encode() + self._cbind_data
        without_proof = f"c={base64.b64encode(cbind_input).decode()},r={nonce}"
        auth_message = f"{self._client_first_bare},{server_first},{without_proof}".encode()
        signature = hmac.digest(keys.stored_key, auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(keys.client_key, signature, strict=True))
        self._server_signature = hmac.digest(keys.server_key, auth_message, "sha256")
        return f"{without_proof},p={base64.b64encode(proof).decode()}"

    def _check_server_first(self, server_first: str) -> tuple[str, bytes, int]:
        """The agent's nonce, salt and iteration count, each checked."""
        attributes = _parse(server_first, "server-first")
        if "e" in attributes:
            raise ScramFailed(f"the agent answered with error {attributes['e'][:40]!r}")
        if list(attributes)[:3] != ["r", "s", "i"]:
            raise ScramFailed("malformed server-first message")
        nonce = attributes["r"]
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise ScramFailed("the agent's nonce does not extend the client's")
        if not _is_nonce(nonce):
            raise ScramFailed("invalid nonce")
        salt = _b64decode(attributes["s"])
        if not salt:
            raise ScramFailed("empty salt")
        return nonce, salt, _iterations(attributes["i"])

    def verify_server_final(self, server_final: str) -> None:
        """Raise ScramFailed unless the agent proved it holds this client's verifier."""
        self._advance(3)
        attributes = _parse(server_final, "server-final")
        if "e" in attributes:
            raise ScramFailed(f"the agent answered with error {attributes['e'][:40]!r}")
        if next(iter(attributes)) != "v":
            raise ScramFailed("malformed server-final message")
        assert self._server_signature is not None
        if not hmac.compare_digest(_b64decode(attributes["v"]), self._server_signature):
            raise ScramFailed("the agent's proof is wrong")


def _is_printable_ascii(text: str) -> bool:
    return all(" " <= ch <= "~" for ch in text)


def _is_nonce(text: str) -> bool:
    # RFC 5802: printable ASCII except ",".
    return bool(text) and all("!" <= ch <= "~" and ch != "," for ch in text)


def _parse(message: str, what: str) -> dict[str, str]:
    """``a=value,b=value`` into an ordered dict; RFC 5802's rules for attributes."""
    attributes: dict[str, str] = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        if not sep or len(key) != 1 or not ("a" <= key <= "z" or "A" <= key <= "Z"):
            raise ScramFailed(f"malformed {what} message")
        if key == "m":
            raise ScramFailed(f"{what} message has a mandatory extension")
        if key in attributes or not value:
            raise ScramFailed(f"malformed {what} message")
        attributes[key] = value
    return attributes


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ScramFailed("invalid base64 in a SCRAM message") from None


def _iterations(text: str) -> int:
    if not text.isascii() or not text.isdigit() or text.startswith("0"):
        raise ScramFailed("invalid iteration count")
    count = int(text)
    if not ITERATIONS <= count <= MAX_ITERATIONS:
        raise ScramFailed(f"iteration count {count} outside {ITERATIONS}..{MAX_ITERATIONS}")
    return count


def _reason(err: Any) -> str:
    return str(err.args[0]) if err.args else "SCRAM exchange failed"
