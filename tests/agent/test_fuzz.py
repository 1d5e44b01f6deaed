"""Property-based tests: arbitrary input to the decoders and the login parser.

No exception but the protocol's own may escape, and a failed parse changes no state.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.binary import decode_frame
from pi_secure_ws_protocol.errors import ProtocolError
from pi_secure_ws_protocol.scram import ScramFailed, ServerExchange, fake_verifier, make_verifier

VERIFIER = make_verifier("SECRET")
CBIND = b"\x01" * 32

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
message_like = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 2, "1", None]),
        "type": st.sampled_from([*m.CLIENT_SCHEMAS, *m.CLIENT_PRELOGIN_SCHEMAS, "x", ""]),
    },
    optional={
        "id": json_values,
        "device": json_values,
        "action": json_values,
        "params": json_values,
        "stream": json_values,
        "message": json_values,
        "mechanism": json_values,
    },
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_decoder_survives_arbitrary_text(text: str) -> None:
    for schemas in (m.CLIENT_SCHEMAS, m.CLIENT_PRELOGIN_SCHEMAS, m.AGENT_SCHEMAS):
        with contextlib.suppress(ProtocolError):
            m.decode(text, schemas)


@settings(max_examples=400)
@given(message_like)
def test_decoder_validates_or_names_the_problem(value: dict[str, Any]) -> None:
    text = json.dumps(value)
    original = json.loads(text)
    try:
        decoded = m.decode(text, m.CLIENT_SCHEMAS)
    except ProtocolError as err:
        assert str(err)
    else:
        assert decoded["v"] == 1
        assert isinstance(decoded["id"], int)
    assert json.loads(text) == original  # decoding never mutates its input


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_binary_frame_decoder_survives_arbitrary_bytes(data: bytes) -> None:
    try:
        header, payload = decode_frame(data)
    except ProtocolError:
        return
    assert isinstance(header, dict)
    assert isinstance(payload, bytes)


scram_text = st.one_of(
    st.text(max_size=120),
    st.builds(
        lambda flag, user, nonce: f"{flag},,n={user},r={nonce}",
        st.sampled_from(["p=tls-server-end-point", "n", "y", "p=tls-unique", "p=", "x"]),
        st.text(max_size=20),
        st.text(max_size=30),
    ),
)


@settings(max_examples=300)
@given(scram_text, scram_text)
def test_login_parser_survives_arbitrary_messages(first: str, final: str) -> None:
    looked_up: list[str] = []

    def lookup(client_id: str) -> tuple[Any, bool]:
        looked_up.append(client_id)
        return (
            (VERIFIER, True)
            if client_id == "homeassistant"
            else (fake_verifier(client_id, b"seed"), False)
        )

    exchange = ServerExchange(CBIND, lookup)
    try:
        exchange.server_first(first)
        exchange.server_final(final)
    except ScramFailed as err:
        assert isinstance(str(err), str)
    else:  # pragma: no cover - would mean a forged proof passed
        raise AssertionError("an arbitrary client-final passed the proof check")
    assert len(looked_up) <= 1
