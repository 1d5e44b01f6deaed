"""clients.json: verifiers and roles, never secrets; unknown ids get a stable fake verifier."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from pi_secure_ws_protocol.const import Role
from pi_secure_ws_protocol.scram import ClientExchange, ScramFailed, ServerExchange
from pi_secure_ws_protocol.secret import generate_secret, normalize_secret

from pi_agent.credentials import CredentialError, CredentialStore, validate_client_id

CBIND = b"\x01" * 32  # stands in for the certificate hash both sides would compute


def _login(store: CredentialStore, client_id: str, secret: str) -> bool:
    """A full SCRAM exchange against the store; True when both proofs check out."""
    client = ClientExchange(client_id, secret, CBIND)
    server = ServerExchange(CBIND, store.lookup)
    try:
        server_first = server.server_first(client.client_first())
        server_final = server.server_final(client.client_final(server_first))
        client.verify_server_final(server_final)
    except ScramFailed:
        return False
    return server.known


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "clients.json"


def test_add_save_load_and_login(path: Path) -> None:
    store = CredentialStore.create(path)
    secret = store.add("homeassistant", Role.CONTROL)
    store.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = CredentialStore.load(path)
    record = loaded.get("homeassistant")
    assert record is not None
    assert record.role is Role.CONTROL
    assert record.client_id == "homeassistant"
    assert _login(loaded, "homeassistant", secret)
    assert not _login(loaded, "homeassistant", generate_secret())
    # Dashes, spaces and case do not matter: the secret survives retyping.
    assert _login(loaded, "homeassistant", secret.lower().replace("-", " "))


def test_secret_is_never_stored(path: Path) -> None:
    store = CredentialStore.create(path)
    secret = store.add("homeassistant", Role.CONTROL)
    store.save()
    text = path.read_text()
    assert secret not in text
    assert normalize_secret(secret) not in text
    entry = json.loads(text)["clients"]["homeassistant"]
    assert set(entry) == {"role", "created", "salt", "stored_key", "server_key", "iterations"}


def test_unknown_id_gets_a_stable_fake_verifier(path: Path, tmp_path: Path) -> None:
    store = CredentialStore.create(path)
    store.add("homeassistant", Role.CONTROL)
    store.save()
    fake, known = store.lookup("mallory")
    assert known is False
    assert CredentialStore.load(path).lookup("mallory") == (fake, False)
    assert store.lookup("eve")[0].salt != fake.salt
    other = CredentialStore.create(tmp_path / "other.json")
    assert other.lookup("mallory")[0].salt != fake.salt
    assert not _login(store, "mallory", "ANYTHING")


def test_rotate_replaces_the_secret_and_keeps_the_role(path: Path) -> None:
    store = CredentialStore.create(path)
    old = store.add("viewer1", Role.VIEWER)
    created = store.get("viewer1").created  # type: ignore[union-attr]
    new = store.rotate("viewer1")
    store.save()
    loaded = CredentialStore.load(path)
    assert new != old
    assert _login(loaded, "viewer1", new)
    assert not _login(loaded, "viewer1", old)
    record = loaded.get("viewer1")
    assert record is not None
    assert record.role is Role.VIEWER
    assert record.created == created


def test_remove(path: Path) -> None:
    store = CredentialStore.create(path)
    secret = store.add("a", Role.ADMIN)
    store.add("b", Role.VIEWER)
    store.remove("a")
    store.save()
    loaded = CredentialStore.load(path)
    assert [c.client_id for c in loaded.clients()] == ["b"]
    assert loaded.lookup("a")[1] is False
    assert not _login(loaded, "a", secret)


def test_clients_sorted(path: Path) -> None:
    store = CredentialStore.create(path)
    for name in ("zeta", "alpha", "mid"):
        store.add(name, Role.VIEWER)
    assert [c.client_id for c in store.clients()] == ["alpha", "mid", "zeta"]
    assert len(store) == 3


@pytest.mark.parametrize(
    "client_id", ["", "Home", "home assistant", "a,b", "a=b", "-x", ".x", "a" * 65, "é"]
)
def test_bad_client_ids(path: Path, client_id: str) -> None:
    with pytest.raises(CredentialError, match="invalid client id"):
        CredentialStore.create(path).add(client_id, Role.CONTROL)


@pytest.mark.parametrize("client_id", ["a", "homeassistant", "ha.main_1-x", "0", "a" * 64])
def test_good_client_ids(client_id: str) -> None:
    assert validate_client_id(client_id) == client_id


def test_duplicate_and_unknown_ids(path: Path) -> None:
    store = CredentialStore.create(path)
    store.add("homeassistant", Role.CONTROL)
    with pytest.raises(CredentialError, match="'homeassistant' already exists"):
        store.add("homeassistant", Role.ADMIN)
    with pytest.raises(
        CredentialError, match=r"unknown client 'nobody' \(known clients: homeassistant\)"
    ):
        store.rotate("nobody")
    with pytest.raises(CredentialError, match="unknown client 'nobody'"):
        store.remove("nobody")


def test_load_errors_name_the_file_and_key(path: Path) -> None:
    with pytest.raises(CredentialError, match=r"clients\.json: missing"):
        CredentialStore.load(path)
    path.write_text("{not json")
    with pytest.raises(CredentialError, match=r"clients\.json: not valid JSON"):
        CredentialStore.load(path)
    store = CredentialStore.create(path)
    store.add("ha", Role.CONTROL)
    store.save()
    document = json.loads(path.read_text())
    document["clients"]["ha"]["role"] = "superuser"
    path.write_text(json.dumps(document))
    with pytest.raises(CredentialError, match=r"clients\.ha\.role: unknown role 'superuser'"):
        CredentialStore.load(path)
    document["clients"]["ha"]["role"] = "control"
    document["clients"]["ha"]["salt"] = "***"
    path.write_text(json.dumps(document))
    with pytest.raises(CredentialError, match=r"clients\.ha\.salt: not valid base64"):
        CredentialStore.load(path)


@pytest.mark.parametrize("iterations", [1, 4095, 65_537, 1_000_000])
def test_an_iteration_count_no_client_accepts_is_refused_at_load(
    path: Path, iterations: int
) -> None:
    """Clients accept 4096..65536 (16 times what the agent issues); a record outside could
    never log in, so loading says so instead of every login failing later."""
    store = CredentialStore.create(path)
    store.add("ha", Role.CONTROL)
    store.save()
    document = json.loads(path.read_text())
    assert document["clients"]["ha"]["iterations"] == 4096
    document["clients"]["ha"]["iterations"] = iterations
    path.write_text(json.dumps(document))
    with pytest.raises(CredentialError, match=rf"clients\.ha\.iterations: {iterations} is outside"):
        CredentialStore.load(path)
