"""docs/protocol.md against the code: every test vector, message example and reference table.

The page is parsed, not copied: a vector sits in the fenced block after ``<!-- vector: NAME -->``,
a message example after ``<!-- message: DIRECTION -->``, a table after ``<!-- table: NAME -->``.
So a change to the protocol that is not made on the page too (or the reverse) fails here. The
SCRAM vector is checked twice: with scramp, and with an RFC 5802 computation written here from
hashlib and hmac; a client written from the page alone then logs in to a real agent.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import math
import re
import secrets
import ssl
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from cryptography import x509
from gpiozero.pins.mock import MockFactory, MockPWMPin
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.binary import decode_frame, encode_frame
from pi_secure_ws_protocol.const import (
    CHANNEL_BINDING,
    MECHANISM,
    PATH,
    PROTOCOL_VERSION,
    SUBPROTOCOL,
    CloseCode,
)
from pi_secure_ws_protocol.devices import CONTRACTS, Opaque, decode_capabilities, decode_state
from pi_secure_ws_protocol.errors import CertificateMismatch
from pi_secure_ws_protocol.pinning import (
    format_fingerprint,
    normalize_fingerprint,
    tls_server_end_point,
    verify_ca,
    verify_leaf,
)
from pi_secure_ws_protocol.scram import (
    ITERATIONS,
    ClientExchange,
    ScramFailed,
    ServerExchange,
    Verifier,
)
from pi_secure_ws_protocol.secret import generate_secret, normalize_secret
from pi_secure_ws_testing.agent import RunningAgent
from pi_secure_ws_testing.wire import http_exchange, tls13_context
from scramp import ScramClient, ScramMechanism
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pi_agent.devices import DEVICE_MODULES, camera, lights, sprinklers
from pi_agent.devices.base import Device, DeviceContext
from pi_agent.devices.frame import PictureFrameDevice
from pi_agent.devices.system import create_system_device
from pi_agent.pki import create_ca

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
VECTORS = (
    "scram",
    "normalisation",
    "fingerprint",
    "fingerprint_inputs",
    "binary_stream",
    "binary_upload",
    "binary_answer",
    "ca_pem",
    "leaf_pem",
    "tls_server_end_point",
)
GS2_HEADER = f"p={CHANNEL_BINDING},,"

# ---- reading the page ----------------------------------------------------------------------


@cache
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def vector_block(name: str) -> str:
    match = re.search(
        rf"<!-- vector: {re.escape(name)} -->\n```[a-z]*\n(.*?)```", doc_text(), re.DOTALL
    )
    assert match is not None, f"docs/protocol.md has no fenced block for vector {name!r}"
    return match.group(1)


def vector_fields(name: str) -> dict[str, str]:
    """A ``key: value`` block; values are everything after the first ``: ``."""
    fields = {}
    for line in vector_block(name).splitlines():
        key, sep, value = line.partition(": ")
        assert sep, f"vector {name!r}: line {line!r} is not 'key: value'"
        fields[key] = value
    return fields


def table_rows(name: str) -> list[list[str]]:
    """The body rows of the table after ``<!-- table|vector: name -->``, as stripped cells."""
    match = re.search(rf"<!-- (?:table|vector): {re.escape(name)} -->\n((?:\|.*\n)+)", doc_text())
    assert match is not None, f"docs/protocol.md has no table {name!r}"
    lines = match.group(1).splitlines()[2:]  # skip the header and the --- row
    # A cell never contains "|" on this page, so a plain split is exact.
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


def first_code(cell: str) -> str:
    spans = code_spans(cell)
    assert spans, f"table cell {cell!r} has no `code`"
    return spans[0]


def message_examples() -> list[tuple[str, str]]:
    return re.findall(r"<!-- message: (\w+) -->\n```json\n(.*?)\n```", doc_text(), re.DOTALL)


def pem_der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


# ---- an RFC 5802 / RFC 7677 SCRAM client computed from scratch ------------------------------


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


@dataclass(frozen=True)
class ScramKeys:
    salted_password: bytes
    client_key: bytes
    stored_key: bytes
    server_key: bytes


def scram_keys(password: str, salt: bytes, iterations: int) -> ScramKeys:
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return ScramKeys(
        salted, client_key, hashlib.sha256(client_key).digest(), _hmac(salted, b"Server Key")
    )


def scram_attributes(message: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in message.split(","))


def scram_client_final(
    *,
    password: str,
    client_first_bare: str,
    server_first: str,
    gs2_header: str,
    cbind_data: bytes,
) -> tuple[str, str]:
    """The client-final message and the server-final message the agent must answer with."""
    attributes = scram_attributes(server_first)
    keys = scram_keys(password, base64.b64decode(attributes["s"]), int(attributes["i"]))
    channel = base64.b64encode(gs2_header.encode() + cbind_data).decode()
    without_proof = f"c={channel},r={attributes['r']}"
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = _hmac(keys.stored_key, auth_message)
    proof = bytes(a ^ b for a, b in zip(keys.client_key, signature, strict=True))
    server_signature = _hmac(keys.server_key, auth_message)
    return (
        f"{without_proof},p={base64.b64encode(proof).decode()}",
        f"v={base64.b64encode(server_signature).decode()}",
    )


# ---- the page is complete -------------------------------------------------------------------


def test_every_vector_named_on_the_page_is_checked_here() -> None:
    on_page = set(re.findall(r"<!-- vector: (\w+) -->", doc_text()))
    assert on_page == set(VECTORS)
    for name in VECTORS:
        assert doc_text().count(f"<!-- vector: {name} -->") == 1


def test_every_message_marker_is_followed_by_a_json_block() -> None:
    markers = re.findall(r"<!-- message: (\w+) -->", doc_text())
    assert len(markers) == len(message_examples()) >= 15


# ---- vector 1: SCRAM ------------------------------------------------------------------------


def test_scram_inputs_are_the_protocols_constants() -> None:
    scram = vector_fields("scram")
    assert normalize_secret(scram["secret"]) == scram["password"]
    # The secret's 32 bytes are 00..1f, as the page says.
    padded = scram["password"] + "=" * (-len(scram["password"]) % 8)
    assert base64.b32decode(padded) == bytes(range(32))
    assert int(scram["iterations"]) == ITERATIONS == 4096
    assert scram["client_first"].startswith(GS2_HEADER)
    assert scram["cbind_data"] == vector_fields("tls_server_end_point")["tls_server_end_point"]


def test_scram_vector_with_scramp() -> None:
    scram = vector_fields("scram")
    salt = bytes.fromhex(scram["salt"])
    cbind = (CHANNEL_BINDING, bytes.fromhex(scram["cbind_data"]))
    mechanism = ScramMechanism(MECHANISM)
    _, stored_key, server_key, iterations = mechanism.make_auth_info(
        normalize_secret(scram["secret"]), iteration_count=int(scram["iterations"]), salt=salt
    )
    assert stored_key.hex() == scram["stored_key"]
    assert server_key.hex() == scram["server_key"]

    client = ScramClient(
        [MECHANISM],
        scram["client_id"],
        normalize_secret(scram["secret"]),
        channel_binding=cbind,
        c_nonce=scram["client_nonce"],
    )
    server = mechanism.make_server(
        lambda _username: (salt, stored_key, server_key, iterations),
        channel_binding=cbind,
        s_nonce=scram["server_nonce"],
    )
    assert client.get_client_first() == scram["client_first"]
    server.set_client_first(scram["client_first"])
    assert server.get_server_first() == scram["server_first"]
    client.set_server_first(scram["server_first"])
    assert client.get_client_final() == scram["client_final"]
    server.set_client_final(scram["client_final"])
    assert server.get_server_final() == scram["server_final"]
    client.set_server_final(scram["server_final"])  # raises if the agent's proof were wrong


def test_scram_vector_computed_from_rfc_5802() -> None:
    scram = vector_fields("scram")
    salt = bytes.fromhex(scram["salt"])
    keys = scram_keys(scram["password"], salt, int(scram["iterations"]))
    assert keys.salted_password.hex() == scram["salted_password"]
    assert keys.client_key.hex() == scram["client_key"]
    assert keys.stored_key.hex() == scram["stored_key"]
    assert keys.server_key.hex() == scram["server_key"]

    bare = f"n={scram['client_id']},r={scram['client_nonce']}"
    assert scram["client_first"] == GS2_HEADER + bare
    nonce = scram["client_nonce"] + scram["server_nonce"]
    salt_b64 = base64.b64encode(salt).decode()
    assert scram["server_first"] == f"r={nonce},s={salt_b64},i={scram['iterations']}"
    client_final, server_final = scram_client_final(
        password=scram["password"],
        client_first_bare=bare,
        server_first=scram["server_first"],
        gs2_header=GS2_HEADER,
        cbind_data=bytes.fromhex(scram["cbind_data"]),
    )
    assert client_final == scram["client_final"]
    assert server_final == scram["server_final"]
    channel = base64.b64decode(scram_attributes(client_final)["c"])
    assert channel == b"p=tls-server-end-point,," + bytes.fromhex(scram["cbind_data"])
    assert len(channel) == 24 + 32


def test_the_rfc_computation_reproduces_rfc_7677s_own_example() -> None:
    """The from-scratch SCRAM above is right: it gives RFC 7677 section 3's published values."""
    server_first = (
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    client_final, server_final = scram_client_final(
        password="pencil",
        client_first_bare="n=user,r=rOprNGfwEbeRWgbNEkqO",
        server_first=server_first,
        gs2_header="n,,",
        cbind_data=b"",
    )
    assert client_final == (
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    assert server_final == "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_the_agents_scram_code_logs_in_with_the_vectors_verifier() -> None:
    """ServerExchange and ClientExchange (what agent and client run) agree with the vector."""
    scram = vector_fields("scram")
    verifier = Verifier(
        salt=bytes.fromhex(scram["salt"]),
        stored_key=bytes.fromhex(scram["stored_key"]),
        server_key=bytes.fromhex(scram["server_key"]),
        iterations=int(scram["iterations"]),
    )
    cbind = bytes.fromhex(scram["cbind_data"])

    def lookup(client_id: str) -> tuple[Verifier, bool]:
        return verifier, client_id == scram["client_id"]

    server = ServerExchange(cbind, lookup)
    client = ClientExchange(scram["client_id"], scram["secret"].lower(), cbind)
    client_first = client.client_first()
    assert re.fullmatch(r"p=tls-server-end-point,,n=homeassistant,r=[0-9a-f]{64}", client_first)
    server_first = server.server_first(client_first)
    client_nonce = scram_attributes(client_first.removeprefix(GS2_HEADER))["r"]
    salt_b64 = base64.b64encode(verifier.salt).decode()
    assert re.fullmatch(
        rf"r={client_nonce}[0-9a-f]{{64}},s={re.escape(salt_b64)},i=4096", server_first
    )
    # The page's formula gives the proof the agent's code accepts, and the proof it answers with.
    client_final, expected_server_final = scram_client_final(
        password=scram["password"],
        client_first_bare=client_first.removeprefix(GS2_HEADER),
        server_first=server_first,
        gs2_header=GS2_HEADER,
        cbind_data=cbind,
    )
    assert client.client_final(server_first) == client_final
    server_final = server.server_final(client_final)
    assert server_final == expected_server_final
    client.verify_server_final(server_final)
    assert server.client_id == scram["client_id"]
    assert server.known


def test_the_agents_scram_code_refuses_another_certificates_binding() -> None:
    scram = vector_fields("scram")
    verifier = Verifier(
        bytes.fromhex(scram["salt"]),
        bytes.fromhex(scram["stored_key"]),
        bytes.fromhex(scram["server_key"]),
        ITERATIONS,
    )
    server = ServerExchange(bytes.fromhex(scram["cbind_data"]), lambda _id: (verifier, True))
    mitm = ClientExchange(scram["client_id"], scram["secret"], hashlib.sha256(b"other").digest())
    server_first = server.server_first(mitm.client_first())
    with pytest.raises(ScramFailed):
        server.server_final(mitm.client_final(server_first))


# ---- vector 2: secret normalisation ---------------------------------------------------------


def test_secret_normalisation_vector() -> None:
    rows = table_rows("normalisation")
    assert len(rows) >= 4
    for typed, password in rows:
        assert normalize_secret(first_code(typed)) == first_code(password)


def test_new_secrets_have_the_documented_form() -> None:
    secret = generate_secret()
    assert re.fullmatch(r"(?:[A-Z2-7]{4}-){12}[A-Z2-7]{4}", secret)
    compact = normalize_secret(secret)
    assert len(compact) == 52
    assert len(base64.b32decode(compact + "====")) == 32


# ---- vector 3: fingerprints -----------------------------------------------------------------


def test_fingerprint_vector() -> None:
    fingerprints = vector_fields("fingerprint")
    for pem_name, key in (("ca_pem", "ca_fingerprint"), ("leaf_pem", "leaf_fingerprint")):
        der = pem_der(vector_block(pem_name))
        assert format_fingerprint(der) == fingerprints[key]
        digest = hashlib.sha256(der).hexdigest().upper()
        assert fingerprints[key] == ":".join(re.findall("..", digest))


def test_fingerprint_inputs_vector() -> None:
    rows = table_rows("fingerprint_inputs")
    assert any("refused" in accepted for _typed, accepted in rows)
    for typed, accepted in rows:
        if accepted.startswith("refused"):
            with pytest.raises(ValueError, match="64 hexadecimal digits"):
                normalize_fingerprint(first_code(typed))
        else:
            assert normalize_fingerprint(first_code(typed)) == first_code(accepted)


# ---- vector 4: binary frames ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["binary_stream", "binary_upload", "binary_answer"])
def test_binary_frame_vector(name: str) -> None:
    fields = vector_fields(name)
    header = json.loads(fields["header"])
    payload = bytes.fromhex(fields["payload"])
    frame = bytes.fromhex(fields["frame"])
    assert encode_frame(header, payload) == frame
    assert decode_frame(frame) == (header, payload)
    # The layout on the page, without our code: 2-byte big-endian length, header, payload.
    (length,) = struct.unpack_from(">H", frame)
    assert frame[2 : 2 + length].decode() == fields["header"]
    assert frame[2 + length :] == payload
    assert f"`{length:04x}`" in doc_text()


def test_binary_upload_vector_is_a_valid_call() -> None:
    header = json.loads(vector_fields("binary_upload")["header"])
    assert m.validate(header, m.CLIENT_SCHEMAS)["type"] == m.CALL


# ---- vector 5: certificates and tls-server-end-point ----------------------------------------


def test_tls_server_end_point_vector() -> None:
    fields = vector_fields("tls_server_end_point")
    der = pem_der(vector_block("leaf_pem"))
    leaf = x509.load_der_x509_certificate(der)
    assert len(der) == int(fields["leaf_der_length"])
    assert leaf.signature_hash_algorithm is not None
    assert leaf.signature_hash_algorithm.name == fields["leaf_signature_hash"]
    assert tls_server_end_point(der).hex() == fields["tls_server_end_point"]
    assert hashlib.sha256(der).hexdigest() == fields["tls_server_end_point"]


def test_vector_leaf_passes_the_clients_checks_and_forgeries_fail() -> None:
    ca_pem = vector_block("ca_pem")
    fingerprint = vector_fields("fingerprint")["ca_fingerprint"]
    leaf_der = pem_der(vector_block("leaf_pem"))
    ca = verify_ca(ca_pem, fingerprint)
    verify_leaf(leaf_der, ca, fingerprint)

    other_fingerprint = vector_fields("fingerprint")["leaf_fingerprint"]
    with pytest.raises(CertificateMismatch):
        verify_ca(ca_pem, other_fingerprint)
    # The last byte of the DER is the last byte of the ECDSA signature's s.
    forged = leaf_der[:-1] + bytes([leaf_der[-1] ^ 0x01])
    with pytest.raises(CertificateMismatch):
        verify_leaf(forged, ca, fingerprint)
    other_ca, _key = create_ca("someone-else")
    with pytest.raises(CertificateMismatch):
        verify_leaf(leaf_der, other_ca, fingerprint)


# ---- message examples -----------------------------------------------------------------------

SCHEMAS_BY_DIRECTION: dict[str, Mapping[str, vol.Schema]] = {
    "client_prelogin": m.CLIENT_PRELOGIN_SCHEMAS,
    "client": m.CLIENT_SCHEMAS,
    "agent_prelogin": m.AGENT_PRELOGIN_SCHEMAS,
    "agent": m.AGENT_SCHEMAS,
}


def test_message_examples_pass_their_schema_and_are_compact() -> None:
    for direction, text in message_examples():
        message = m.decode(text, SCHEMAS_BY_DIRECTION[direction])
        raw = json.loads(text)
        assert m.encode(raw.pop("type"), **{k: v for k, v in raw.items() if k != "v"}) == text
        assert message["v"] == PROTOCOL_VERSION


def test_login_example_is_the_scram_vector() -> None:
    scram = vector_fields("scram")
    expected = {
        m.AUTH_CLIENT_FIRST: scram["client_first"],
        m.AUTH_SERVER_FIRST: scram["server_first"],
        m.AUTH_CLIENT_FINAL: scram["client_final"],
        m.AUTH_SERVER_FINAL: scram["server_final"],
    }
    seen = {}
    for _direction, text in message_examples():
        message = json.loads(text)
        if message["type"] in expected:
            seen[message["type"]] = message["message"]
        if message["type"] == m.AUTH_START:
            assert message["ca"] == vector_block("ca_pem")
            assert message["mechanisms"] == [MECHANISM]
    assert seen == expected


def test_message_type_table_lists_every_type_with_its_direction() -> None:
    documented = {first_code(row[0]): row[1] for row in table_rows("message_types")}
    from_agent = set(m.AGENT_PRELOGIN_SCHEMAS) | set(m.AGENT_SCHEMAS)
    from_client = set(m.CLIENT_PRELOGIN_SCHEMAS) | set(m.CLIENT_SCHEMAS)
    assert set(documented) == from_agent | from_client
    for type_, direction in documented.items():
        assert direction == ("agent → client" if type_ in from_agent else "client → agent")


# ---- tables ---------------------------------------------------------------------------------


def test_close_code_table_is_the_close_code_enum() -> None:
    rows = table_rows("close_codes")
    documented = {int(row[0]): row[1] for row in rows}
    assert documented == {code.value: code.name.lower().replace("_", " ") for code in CloseCode}


def test_error_code_table_is_every_error_code() -> None:
    documented = [first_code(row[0]) for row in table_rows("error_codes")]
    codes = [value for name, value in vars(m).items() if name.startswith("ERR_")]
    assert sorted(documented) == sorted(codes)


def test_auth_failed_table_is_every_reason() -> None:
    rows = {first_code(row[0]): row[1] for row in table_rows("auth_failed_reasons")}
    reasons = {value for name, value in vars(m).items() if name.startswith("REASON_")}
    assert set(rows) == reasons
    assert rows[m.REASON_INVALID_AUTH] == str(int(CloseCode.INVALID_AUTH))
    assert rows[m.REASON_PROTOCOL].startswith(str(int(CloseCode.PROTOCOL_ERROR)))
    assert str(int(CloseCode.UNSUPPORTED_DATA)) in rows[m.REASON_PROTOCOL]


# ---- a client written from the page, against a real agent -----------------------------------


async def _open(agent: RunningAgent, path: str = PATH, **kwargs: Any) -> ClientConnection:
    options: dict[str, Any] = {"subprotocols": [SUBPROTOCOL], "compression": None}
    options.update(kwargs)
    return await connect(
        f"wss://127.0.0.1:{agent.port}{path}", ssl=tls13_context(), open_timeout=5, **options
    )


async def _recv_json(ws: ClientConnection) -> dict[str, Any]:
    frame = await ws.recv()
    assert isinstance(frame, str)
    value: dict[str, Any] = json.loads(frame)
    return value


async def _checked_auth_start(ws: ClientConnection, agent: RunningAgent) -> bytes:
    """Read auth_start and run the page's pinning checks; return the leaf's DER."""
    assert ws.subprotocol == SUBPROTOCOL
    leaf_der: bytes = ws.transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
    start = await _recv_json(ws)
    assert start["type"] == "auth_start"
    assert start["mechanisms"] == ["SCRAM-SHA-256-PLUS"]
    digest = hashlib.sha256(pem_der(start["ca"])).hexdigest().upper()
    assert ":".join(re.findall("..", digest)) == agent.fingerprint
    leaf = x509.load_der_x509_certificate(leaf_der)
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(start["ca"].encode()))
    return leaf_der


async def _login(ws: ClientConnection, secret: str, cbind_data: bytes) -> dict[str, Any]:
    """Steps 2-5 of the login, as the page describes them; returns the agent's last message."""
    password = "".join(ch for ch in secret.upper() if ch.isalnum())
    bare = f"n=homeassistant,r={secrets.token_hex(16)}"
    await ws.send(
        json.dumps(
            {
                "v": 1,
                "type": "auth_client_first",
                "mechanism": "SCRAM-SHA-256-PLUS",
                "message": GS2_HEADER + bare,
            }
        )
    )
    server_first = await _recv_json(ws)
    assert server_first["type"] == "auth_server_first"
    client_final, expected = scram_client_final(
        password=password,
        client_first_bare=bare,
        server_first=server_first["message"],
        gs2_header=GS2_HEADER,
        cbind_data=cbind_data,
    )
    await ws.send(json.dumps({"v": 1, "type": "auth_client_final", "message": client_final}))
    answer = await _recv_json(ws)
    if answer["type"] == "auth_server_final":
        assert hmac.compare_digest(answer["message"], expected), "not the paired agent"
    return answer


def _assert_hello_is_documented(hello: dict[str, Any]) -> None:
    """The page's hello example and field table have the fields of a real agent's hello."""
    (example,) = [json.loads(text) for _d, text in message_examples() if '"type":"hello"' in text]
    assert set(example) == set(hello)
    for section in ("agent", "session"):
        assert set(example[section]) == set(hello[section]), section
    assert set(example["devices"][0]) == set(hello["devices"][0])
    assert set(example["states"]["system"]) == set(hello["states"]["system"])
    fields = {span for row in table_rows("hello_fields") for span in code_spans(row[0])}
    expected = {f"{section}.{key}" for section in ("agent", "session") for key in hello[section]}
    assert fields == expected | {"devices", "states"}


async def test_a_client_written_from_this_page_logs_in_and_runs_a_session(
    agent: RunningAgent,
) -> None:
    async with await _open(agent) as ws:
        leaf_der = await _checked_auth_start(ws, agent)
        answer = await _login(ws, agent.secret, hashlib.sha256(leaf_der).digest())
        assert answer["type"] == "auth_server_final"
        hello = await _recv_json(ws)
        assert hello["type"] == "hello"
        assert hello["agent"]["protocol"] == 1
        assert hello["session"]["client_id"] == "homeassistant"
        assert hello["session"]["role"] == "control"
        assert agent.app.server is not None
        assert hello["session"]["max_message_size"] == agent.app.server.limits.max_message_size
        assert [d["kind"] for d in hello["devices"]] == ["system"]
        _assert_hello_is_documented(hello)

        await ws.send('{"v":1,"type":"ping","id":1}')
        assert await _recv_json(ws) == {"v": 1, "type": "result", "id": 1, "data": {}}
        await ws.send('{"v":1,"type":"get_states","id":2}')
        states = await _recv_json(ws)
        assert states["id"] == 2
        assert set(states["data"]["states"]) == set(hello["states"])
        # The errors table, as the agent answers them; the session goes on after each.
        requests = {
            '{"v":1,"type":"subscribe","id":3}': (3, "unknown_type"),
            "not json": (None, "invalid_message"),
            '{"v":1,"type":"ping","id":4,"extra":true}': (4, "invalid_message"),
            '{"v":2,"type":"ping","id":5}': (5, "invalid_message"),
            '{"v":1,"type":"call","id":6,"device":"nope","action":"x"}': (6, "unknown_device"),
            '{"v":1,"type":"call","id":7,"device":"system","action":"x"}': (7, "unknown_action"),
            '{"v":1,"type":"call","id":8,"device":"system","action":"reboot"}': (8, "forbidden"),
            '{"v":1,"type":"stream_stop","id":9,"stream":99}': (9, "unknown_stream"),
        }
        for request, (request_id, code) in requests.items():
            await ws.send(request)
            error = await _recv_json(ws)
            assert (error["type"], error["id"], error["code"]) == ("error", request_id, code)
        await ws.send('{"v":1,"type":"call","id":10,"device":"system","action":"refresh"}')
        while (result := await _recv_json(ws))["type"] == "state":
            pass
        assert (result["type"], result["id"]) == ("result", 10)
        assert set(result["data"]) == set(hello["states"]["system"])


async def test_a_login_bound_to_another_certificate_fails_as_the_page_says(
    agent: RunningAgent,
) -> None:
    async with await _open(agent) as ws:
        await _checked_auth_start(ws, agent)
        answer = await _login(ws, agent.secret, hashlib.sha256(b"a MITM's certificate").digest())
        assert answer == {"v": 1, "type": "auth_failed", "reason": "invalid_auth"}
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == CloseCode.INVALID_AUTH
    assert int(CloseCode.INVALID_AUTH) == 4401
    assert ws.close_reason == "invalid auth"


async def test_a_binary_frame_before_login_fails_as_the_page_says(agent: RunningAgent) -> None:
    async with await _open(agent) as ws:
        await _checked_auth_start(ws, agent)
        await ws.send(b"\x00\x02{}")
        assert await _recv_json(ws) == {"v": 1, "type": "auth_failed", "reason": "protocol_error"}
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == CloseCode.UNSUPPORTED_DATA


def _upgrade(extra: str = "", request_line: str = "GET /v1 HTTP/1.1") -> bytes:
    return (
        f"{request_line}\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n{extra}\r\n"
    ).encode()


async def _refusal(agent: RunningAgent, order: int) -> InvalidStatus:
    """A request breaking rule ``order`` of the upgrade table and every rule after it."""
    path = "/v2" if order <= 2 else PATH  # rule 2
    if order <= 1:
        path += "?token=x"  # rule 1
    # Rule 3, a blocked source, is the agent's state: the caller sets it up.
    options: dict[str, Any] = {"origin": "https://evil.example"}  # rule 5
    if order <= 4:
        options["subprotocols"] = None  # rule 4
    with pytest.raises(InvalidStatus) as caught:
        await _open(agent, path, **options)
    return caught.value


async def test_upgrade_refusals_table_in_its_order(agent: RunningAgent) -> None:
    rows = table_rows("upgrade_refusals")
    assert [int(row[0]) for row in rows] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert agent.app.server is not None
    blocklist = agent.app.server.blocklist
    for _ in range(blocklist.settings.threshold + 3):  # blocked for 8 s: long enough for the test
        blocklist.record_failure("127.0.0.1")
    for order, _condition, status, body in rows:
        if order == "4":
            blocklist.record_success("127.0.0.1")  # rules 4 to 7 need an unblocked source
        if order in ("6", "7", "8"):
            request = {
                "6": _upgrade("Host: other.example\r\n"),
                "7": _upgrade(request_line="POST /v1 HTTP/1.1"),
                "8": b"\x16\x03garbage\r\n\r\n",
            }[order]
            code, head, text = await http_exchange(agent, request)
            assert code == int(status), f"rule {order}"
            assert text.decode().strip() == first_code(body)
            assert b"\nServer:" not in head
            continue
        refusal = await _refusal(agent, int(order))
        assert refusal.response.status_code == int(status), f"rule {order}"
        assert refusal.response.body.decode().strip() == first_code(body)
        assert "Server" not in refusal.response.headers
        if order == "3":
            retry_after = int(refusal.response.headers["Retry-After"])
            assert 0 < retry_after <= math.ceil(blocklist.retry_after("127.0.0.1") or 0) + 1


# ---- the device reference -------------------------------------------------------------------

DOCUMENTED_MODULES = {"light", "sprinklers", "frame", "camera"}


def _one_of_each_kind(tmp_path: Path) -> list[Device]:
    ctx = DeviceContext(
        pin_factory=MockFactory(pin_class=MockPWMPin),
        state_dir=tmp_path,
        mock=True,
        config_dir=tmp_path,
    )
    return [
        create_system_device(ctx),
        *lights.create(
            [{"id": "porch", "pin": 17, "dimmable": True}, {"id": "relay", "pin": 18}], ctx
        ),
        *sprinklers.create({"pump": {"pin": 5}, "zone": [{"id": "lawn", "pin": 22}]}, ctx),
        PictureFrameDevice(tmp_path / "pictures", tmp_path / "frame.json", root=tmp_path, env={}),
        *camera.create(camera.CONFIG_SCHEMA({"backend": "test_pattern"}), ctx),
    ]


def _documented_params(cell: str) -> dict[str, bool]:
    """Parameter name -> required, from a cell like "`zone` *(required)*, `seconds` (...)"."""
    if cell == "none":
        return {}
    found = re.findall(r"(?:^|, )`(\w+)`( \*\(required\)\*)?", cell)
    return {name: bool(required) for name, required in found}


def _schema_params(schema: vol.Schema) -> dict[str, bool]:
    keys = schema.schema
    assert isinstance(keys, dict)
    return {str(marker.schema): isinstance(marker, vol.Required) for marker in keys}


async def test_device_tables_match_the_devices(tmp_path: Path) -> None:
    assert {module.CONFIG_KEY for module in DEVICE_MODULES} == DOCUMENTED_MODULES, (
        "a device module was added or removed: update the device reference in docs/protocol.md"
    )
    devices = _one_of_each_kind(tmp_path)
    by_kind: dict[str, list[Device]] = {}
    for device in devices:
        by_kind.setdefault(device.kind, []).append(device)
    documented_kinds = set(re.findall(r"<!-- table: actions/(\w+) -->", doc_text()))
    assert documented_kinds == set(by_kind)
    try:
        for kind, instances in by_kind.items():
            capabilities = {first_code(r[0]) for r in table_rows(f"capabilities/{kind}")}
            assert capabilities == {k for d in instances for k in d.capabilities()}, kind
            state = {first_code(r[0]) for r in table_rows(f"state/{kind}")}
            assert state == {k for d in instances for k in d.state()}, kind
            actions = {first_code(r[0]): r for r in table_rows(f"actions/{kind}")}
            for device in instances:
                assert set(actions) == set(device.actions()), kind
                for name, action in device.actions().items():
                    _name, params, role, _answer = actions[name]
                    assert role == action.role.label, f"{kind}.{name}"
                    assert _documented_params(params) == _schema_params(action.schema), (
                        f"{kind}.{name}"
                    )
    finally:
        for device in devices:
            await device.stop()


def test_device_tables_are_the_typed_contract() -> None:
    """Each kind's tables name exactly the fields and actions of protocol/devices."""
    for kind, contract in CONTRACTS.items():
        for table, cls in (("capabilities", contract.capabilities), ("state", contract.state)):
            documented = [first_code(r[0]) for r in table_rows(f"{table}/{kind}")]
            assert documented == [f.name for f in dataclasses.fields(cls)], f"{table}/{kind}"
        actions = [first_code(r[0]) for r in table_rows(f"actions/{kind}")]
        assert actions == [action.value for action in contract.actions], kind


def test_every_documented_device_example_decodes_and_re_encodes_exactly() -> None:
    examples = [json.loads(text) for _direction, text in message_examples()]
    (hello,) = [example for example in examples if example["type"] == "hello"]
    kinds = {device["id"]: device["kind"] for device in hello["devices"]}
    checked = []
    for device in hello["devices"]:
        capabilities = decode_capabilities(device["kind"], device["capabilities"])
        assert capabilities.to_wire() == device["capabilities"]
        checked.append(type(capabilities))
    states = [(device_id, state) for device_id, state in hello["states"].items()]
    for example in examples:
        if example["type"] == "state":
            states.append((example["device"], example["state"]))
        elif example["type"] == "result" and "states" in example["data"]:
            states.extend(example["data"]["states"].items())
        elif example["type"] == "result" and example["id"] == 7:  # the answer to turn_on
            states.append(("porch", example["data"]))
    for device_id, wire in states:
        state = decode_state(kinds[device_id], wire)
        assert json.dumps(state.to_wire()) == json.dumps(wire), device_id
        checked.append(type(state))
    assert not any(cls is Opaque for cls in checked)
    assert len(states) >= 5
