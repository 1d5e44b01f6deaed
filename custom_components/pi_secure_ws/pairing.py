"""One login to check what a pairing form was given, and the form's small helpers.

The flow steps (config_flow.py) ask; this logs in once, closes again, and says in the form's
words why it failed: the meaning of the error is protocol.errors.classify's, not decided here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.const import CONF_HOST, CONF_PORT

from .connection import create_client
from .const import CONF_FINGERPRINT, CONF_SECRET, LOGGER
from .protocol.client import Hello
from .protocol.errors import CertificateMismatch, ErrorKind, classify
from .protocol.pinning import normalize_fingerprint
from .protocol.secret import is_well_formed_secret

# Guards against an agent that accepts TCP but never finishes the login.
PROBE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Paired:
    """What a successful login told us."""

    hello: Hello
    fingerprint: str
    ca_pem: str


class PairingError(Exception):
    """A login failed in a way the form explains; ``key`` names the error text."""

    def __init__(self, key: str, placeholders: dict[str, str] | None = None) -> None:
        super().__init__(key)
        self.key = key
        self.placeholders = placeholders or {}


async def async_pair(data: Mapping[str, Any]) -> Paired:
    """Log in once with ``data`` (the entry's fields) and close again."""
    client = create_client(dict(data))
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            hello = await client.connect()
    except Exception as err:
        raise _pairing_error(data, err) from err
    finally:
        await client.close()
    assert client.fingerprint is not None
    assert client.ca_pem is not None
    return Paired(hello, client.fingerprint, client.ca_pem)


def _pairing_error(data: Mapping[str, Any], err: Exception) -> PairingError:
    meaning = classify(err, host=str(data[CONF_HOST]), port=data[CONF_PORT])
    if meaning.unexpected:
        LOGGER.exception("Unexpected error pairing with %s", data[CONF_HOST])
    elif meaning.kind is ErrorKind.CANNOT_CONNECT:
        LOGGER.debug("Cannot pair: %s", meaning.message)
    placeholders: dict[str, str] = {}
    if meaning.retry_after_seconds is not None:
        placeholders["retry_after"] = str(meaning.retry_after_seconds)
    if meaning.kind is ErrorKind.CERTIFICATE_MISMATCH:
        actual = err.actual if isinstance(err, CertificateMismatch) else None
        placeholders["actual"] = actual or "an unknown certificate"
    return PairingError(meaning.connect_key, placeholders)


def secret_errors(user_input: Mapping[str, Any]) -> dict[str, str]:
    """Refuse a secret that cannot be one before a login is spent on it (the agent counts it)."""
    if is_well_formed_secret(str(user_input.get(CONF_SECRET) or "")):
        return {}
    return {CONF_SECRET: "invalid_secret"}


def fingerprint_rows(fingerprint: str) -> str:
    """The fingerprint in rows of eight bytes, so it never wraps inside a group on screen."""
    groups = fingerprint.split(":")
    return "\n".join(":".join(groups[i : i + 8]) for i in range(0, len(groups), 8))


def pasted_fingerprint(user_input: Mapping[str, Any]) -> str | None:
    """The normalised fingerprint the user pasted, None if none; ValueError if malformed."""
    text = str(user_input.get(CONF_FINGERPRINT) or "").strip()
    return normalize_fingerprint(text) if text else None
