"""``clients.json``: each client's role and SCRAM verifier. Secrets are shown once, never stored.

Layout (version 1)::

    {"version": 1, "fake_seed": "<base64>",
     "clients": {"homeassistant": {"role": "control", "created": "2025-...Z",
                                    "salt": "<b64>", "stored_key": "<b64>",
                                    "server_key": "<b64>", "iterations": 4096}}}

``fake_seed`` is a random per-agent key for the fake verifiers of unknown client ids, so a login
with an unknown id looks exactly like one with a wrong secret.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pi_secure_ws_protocol.const import Role
from pi_secure_ws_protocol.scram import (
    ITERATIONS,
    MAX_ITERATIONS,
    Verifier,
    fake_verifier,
    make_verifier,
)
from pi_secure_ws_protocol.secret import generate_secret

from .fsutil import atomic_write

CLIENTS_FILE: Final = "clients.json"
FORMAT_VERSION: Final = 1
# SCRAM usernames must not contain ',' or '='; a short plain alphabet also keeps logs readable.
CLIENT_ID_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_SEED_BYTES: Final = 32


class CredentialError(Exception):
    """A bad client id, a duplicate or unknown client, or an unreadable clients.json."""


@dataclass(frozen=True)
class ClientRecord:
    client_id: str
    role: Role
    verifier: Verifier
    created: dt.datetime


def validate_client_id(client_id: str) -> str:
    """Return ``client_id`` when it is valid, else raise CredentialError saying what is allowed."""
    if not CLIENT_ID_PATTERN.match(client_id):
        raise CredentialError(
            f"invalid client id {client_id!r}: use 1-64 characters of a-z, 0-9, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return client_id


class CredentialStore:
    """The clients allowed to log in. Changes are kept in memory until :meth:`save`."""

    def __init__(self, path: Path, fake_seed: bytes, clients: dict[str, ClientRecord]) -> None:
        self.path = path
        self._fake_seed = fake_seed
        self._clients = clients

    @classmethod
    def create(cls, path: Path) -> CredentialStore:
        """A new, empty store with a fresh fake seed (not yet written: call :meth:`save`)."""
        return cls(path, secrets.token_bytes(_SEED_BYTES), {})

    @classmethod
    def load(cls, path: Path) -> CredentialStore:
        """Read ``path``; raise CredentialError naming the file and the problem."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CredentialError(f"{path}: missing (run `pi-agent init`)") from None
        except OSError as err:
            raise CredentialError(f"{path}: cannot read: {err.strerror}") from None
        except (ValueError, UnicodeDecodeError) as err:
            raise CredentialError(f"{path}: not valid JSON: {err}") from None
        return cls(path, *_parse(path, raw))

    def lookup(self, client_id: str) -> tuple[Verifier, bool]:
        """The verifier for a login: the real one and True, or a stable fake one and False."""
        record = self._clients.get(client_id)
        if record is None:
            return fake_verifier(client_id, self._fake_seed), False
        return record.verifier, True

    def get(self, client_id: str) -> ClientRecord | None:
        return self._clients.get(client_id)

    def clients(self) -> list[ClientRecord]:
        """Every client, sorted by id."""
        return [self._clients[key] for key in sorted(self._clients)]

    def __iter__(self) -> Iterator[ClientRecord]:
        return iter(self.clients())

    def __len__(self) -> int:
        return len(self._clients)

    def add(self, client_id: str, role: Role) -> str:
        """Add a client; return its new secret (shown once, never stored)."""
        validate_client_id(client_id)
        if client_id in self._clients:
            raise CredentialError(
                f"client {client_id!r} already exists (use `client rotate` for a new secret)"
            )
        secret = generate_secret()
        self._clients[client_id] = ClientRecord(
            client_id, role, make_verifier(secret), dt.datetime.now(dt.UTC).replace(microsecond=0)
        )
        return secret

    def rotate(self, client_id: str) -> str:
        """Give a client a new secret (the old one stops working); return the new secret."""
        record = self._require(client_id)
        secret = generate_secret()
        self._clients[client_id] = ClientRecord(
            client_id, record.role, make_verifier(secret), record.created
        )
        return secret

    def remove(self, client_id: str) -> None:
        self._require(client_id)
        del self._clients[client_id]

    def save(self) -> None:
        """Write the store atomically with mode 0600."""
        document = {
            "version": FORMAT_VERSION,
            "fake_seed": _b64(self._fake_seed),
            "clients": {record.client_id: _encode_record(record) for record in self.clients()},
        }
        atomic_write(self.path, (json.dumps(document, indent=2) + "\n").encode())

    def _require(self, client_id: str) -> ClientRecord:
        record = self._clients.get(client_id)
        if record is None:
            known = ", ".join(sorted(self._clients)) or "none"
            raise CredentialError(f"unknown client {client_id!r} (known clients: {known})")
        return record


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _encode_record(record: ClientRecord) -> dict[str, Any]:
    return {
        "role": record.role.label,
        "created": record.created.isoformat().replace("+00:00", "Z"),
        "salt": _b64(record.verifier.salt),
        "stored_key": _b64(record.verifier.stored_key),
        "server_key": _b64(record.verifier.server_key),
        "iterations": record.verifier.iterations,
    }


def _parse(path: Path, raw: object) -> tuple[bytes, dict[str, ClientRecord]]:
    if not isinstance(raw, dict):
        raise CredentialError(f"{path}: expected a JSON object")
    if raw.get("version") != FORMAT_VERSION:
        raise CredentialError(
            f"{path}: version: unsupported {raw.get('version')!r} (expected {FORMAT_VERSION})"
        )
    seed = _decode_b64(path, "fake_seed", raw.get("fake_seed"))
    clients_raw = raw.get("clients")
    if not isinstance(clients_raw, dict):
        raise CredentialError(f"{path}: clients: expected an object")
    clients: dict[str, ClientRecord] = {}
    for client_id, entry in clients_raw.items():
        clients[client_id] = _parse_record(path, client_id, entry)
    return seed, clients


def _parse_record(path: Path, client_id: str, entry: object) -> ClientRecord:
    where = f"clients.{client_id}"
    try:
        validate_client_id(client_id)
    except CredentialError as err:
        raise CredentialError(f"{path}: {where}: {err}") from None
    if not isinstance(entry, dict):
        raise CredentialError(f"{path}: {where}: expected an object")
    role_text = entry.get("role")
    try:
        role = Role.parse(role_text if isinstance(role_text, str) else "")
    except ValueError as err:
        raise CredentialError(f"{path}: {where}.role: {err}") from None
    iterations = entry.get("iterations")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise CredentialError(f"{path}: {where}.iterations: expected a positive integer")
    if not ITERATIONS <= iterations <= MAX_ITERATIONS:
        # Clients refuse any other count, so such a record could never log in.
        raise CredentialError(
            f"{path}: {where}.iterations: {iterations} is outside {ITERATIONS}..{MAX_ITERATIONS},"
            " which no client accepts; rotate this client's secret"
        )
    created_text = entry.get("created")
    try:
        created = dt.datetime.fromisoformat(str(created_text))
    except ValueError:
        raise CredentialError(f"{path}: {where}.created: not an ISO 8601 time") from None
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    verifier = Verifier(
        salt=_decode_b64(path, f"{where}.salt", entry.get("salt")),
        stored_key=_decode_b64(path, f"{where}.stored_key", entry.get("stored_key")),
        server_key=_decode_b64(path, f"{where}.server_key", entry.get("server_key")),
        iterations=iterations,
    )
    return ClientRecord(client_id, role, verifier, created)


def _decode_b64(path: Path, key: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise CredentialError(f"{path}: {key}: expected a base64 string")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CredentialError(f"{path}: {key}: not valid base64") from None
    if not decoded:
        raise CredentialError(f"{path}: {key}: empty")
    return decoded
