"""The client's side of SCRAM-SHA-256-PLUS, written here, against scramp's and against the agent.

ClientExchange is not scramp's ScramClient (it reuses derived keys across logins, which scramp
cannot), so it is held to scramp byte for byte, fed hostile server messages, and its key reuse is
shown to happen, and to stop when it must, with a real agent.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pi_secure_ws_protocol import scram
from pi_secure_ws_protocol.client import AgentClient
from pi_secure_ws_protocol.const import CHANNEL_BINDING, MECHANISM
from pi_secure_ws_protocol.errors import InvalidAuth
from pi_secure_ws_protocol.scram import (
    ITERATIONS,
    MAX_ITERATIONS,
    ClientExchange,
    ScramFailed,
    ServerExchange,
    Verifier,
    derive_client_keys,
    make_verifier,
)
from pi_secure_ws_protocol.secret import generate_secret, normalize_secret
from pi_secure_ws_testing.agent import RunningAgent
from scramp import ScramClient
from scramp.utils import saslprep

CBIND = hashlib.sha256(b"the agent's leaf certificate").digest()
SECRET = generate_secret()
VERIFIER = make_verifier(SECRET)


@pytest.fixture
def pbkdf2_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The client's PBKDF2 runs, one per stretching of a secret: the id of the thread of each."""
    calls: list[int] = []
    real_pbkdf2 = hashlib.pbkdf2_hmac

    def counting_pbkdf2(*args: Any) -> bytes:
        calls.append(threading.get_ident())
        return real_pbkdf2(*args)

    monkeypatch.setattr(scram.hashlib, "pbkdf2_hmac", counting_pbkdf2)
    return calls


def server(verifier: Verifier = VERIFIER, known: bool = True) -> ServerExchange:
    return ServerExchange(CBIND, lambda _id: (verifier, known))


def server_first_for(client_first: str, **changes: str) -> str:
    """A server-first answering ``client_first``, with attributes replaced as asked."""
    nonce = client_first.split("r=", 1)[1]
    attributes = {
        "r": nonce + "agentnonce",
        "s": base64.b64encode(VERIFIER.salt).decode(),
        "i": str(ITERATIONS),
    }
    attributes.update(changes)
    return ",".join(f"{key}={value}" for key, value in attributes.items())


@pytest.mark.parametrize("client_id", ["homeassistant", "a=b,c", "Kitchen Pi 2", "x"])
def test_messages_are_scramps_byte_for_byte(client_id: str) -> None:
    nonce = "fixednonce0123456789"
    ours = ClientExchange(client_id, SECRET, CBIND, nonce=nonce)
    theirs = ScramClient(
        [MECHANISM],
        client_id,
        normalize_secret(SECRET),
        channel_binding=(CHANNEL_BINDING, CBIND),
        c_nonce=nonce,
    )
    agent = server()
    first = ours.client_first()
    assert first == theirs.get_client_first()
    server_first = agent.server_first(first)
    final = ours.client_final(server_first)
    theirs.set_server_first(server_first)
    assert final == theirs.get_client_final()
    server_final = agent.server_final(final)  # scramp accepts the proof and the binding
    ours.verify_server_final(server_final)
    theirs.set_server_final(server_final)
    assert agent.client_id == client_id


def test_sasl_prep_is_the_identity_on_what_the_client_accepts() -> None:
    """Why ClientExchange needs no SASLprep: it accepts only printable ASCII, which SASLprep
    leaves as it is; anything else it refuses rather than sends unprepared."""
    printable = "".join(chr(code) for code in range(0x20, 0x7F))
    assert saslprep(printable) == printable
    for client_id in ("h\u00e9", "tab\there", "nul\x00", ""):
        with pytest.raises(ScramFailed, match="client id"):
            ClientExchange(client_id, SECRET, CBIND)
    with pytest.raises(ScramFailed, match="secret"):
        ClientExchange("homeassistant", "\u00e9t\u00e9", CBIND)


def test_cached_keys_give_the_same_proof_without_the_secret_being_stretched_again(
    pbkdf2_calls: list[int],
) -> None:
    keys = derive_client_keys(normalize_secret(SECRET), VERIFIER.salt, VERIFIER.iterations)
    pbkdf2_calls.clear()
    nonce = "samenonce"
    fresh = ClientExchange("homeassistant", SECRET, CBIND, nonce=nonce)
    cached = ClientExchange("homeassistant", SECRET, CBIND, nonce=nonce, keys=keys)
    client_first = fresh.client_first()
    assert cached.client_first() == client_first
    first = server_first_for(client_first)
    assert fresh.client_final(first) == cached.client_final(first)
    assert len(pbkdf2_calls) == 1  # only the exchange without keys stretched the secret
    assert cached.keys is keys


def test_keys_for_another_salt_or_count_are_derived_again() -> None:
    other = derive_client_keys(normalize_secret(SECRET), b"another salt of 16b", ITERATIONS)
    exchange = ClientExchange("homeassistant", SECRET, CBIND, keys=other)
    agent = server()
    final = exchange.client_final(agent.server_first(exchange.client_first()))
    exchange.verify_server_final(agent.server_final(final))
    assert exchange.keys is not None and exchange.keys.salt == VERIFIER.salt


def test_stale_keys_of_an_old_secret_fail_like_a_wrong_secret() -> None:
    """Keys are tied to the salt they were made with: a verifier made again for a new secret has
    a new salt, so keys of the old secret are never used against it."""
    old_keys = derive_client_keys(normalize_secret(SECRET), VERIFIER.salt, ITERATIONS)
    new_secret = generate_secret()
    new_verifier = make_verifier(new_secret)
    assert new_verifier.salt != VERIFIER.salt
    exchange = ClientExchange("homeassistant", SECRET, CBIND, keys=old_keys)
    agent = server(new_verifier)
    with pytest.raises(ScramFailed):
        agent.server_final(exchange.client_final(agent.server_first(exchange.client_first())))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"i": str(ITERATIONS - 1)}, "iteration count"),
        ({"i": str(MAX_ITERATIONS + 1)}, "iteration count"),
        ({"i": "04096"}, "iteration count"),
        ({"i": "4096x"}, "iteration count"),
        ({"i": "\u0664\u0660\u0669\u0666"}, "iteration count"),  # Arabic-Indic digits
        ({"s": "not base64!"}, "base64"),
        ({"s": "===="}, "base64"),
        ({"r": "someone-elses-nonce"}, "nonce"),
        ({"m": "mandatory"}, "mandatory extension"),
    ],
)
def test_hostile_server_first_messages_are_refused(changes: dict[str, str], reason: str) -> None:
    exchange = ClientExchange("homeassistant", SECRET, CBIND)
    with pytest.raises(ScramFailed, match=reason):
        exchange.client_final(server_first_for(exchange.client_first(), **changes))


@pytest.mark.parametrize("count", [MAX_ITERATIONS + 1, 1_000_000, 10**12])
def test_counts_far_above_the_agents_are_refused_before_any_pbkdf2(
    count: int, pbkdf2_calls: list[int]
) -> None:
    """The agent issues 4096; a fake agent asking for more than 16 times that gets nothing."""
    assert MAX_ITERATIONS == 16 * ITERATIONS
    exchange = ClientExchange("homeassistant", SECRET, CBIND)
    server_first = server_first_for(exchange.client_first(), i=str(count))
    with pytest.raises(ScramFailed, match="iteration count"):
        exchange.keys_needed(server_first)
    with pytest.raises(ScramFailed, match="iteration count"):
        exchange.derive_keys(VERIFIER.salt, count)
    with pytest.raises(ScramFailed, match="iteration count"):
        exchange.client_final(server_first)
    assert pbkdf2_calls == []


def test_keys_needed_names_the_stretching_and_derive_keys_does_it(pbkdf2_calls: list[int]) -> None:
    exchange = ClientExchange("homeassistant", SECRET, CBIND)
    agent = server()
    server_first = agent.server_first(exchange.client_first())
    assert exchange.keys_needed(server_first) == (VERIFIER.salt, ITERATIONS)
    exchange.derive_keys(VERIFIER.salt, ITERATIONS)
    assert exchange.keys_needed(server_first) is None  # the derived keys serve
    agent.server_final(exchange.client_final(server_first))
    assert len(pbkdf2_calls) == 1


def test_a_nonce_that_only_repeats_the_clients_is_refused() -> None:
    exchange = ClientExchange("homeassistant", SECRET, CBIND)
    client_first = exchange.client_first()
    client_nonce = client_first.split("r=", 1)[1]
    with pytest.raises(ScramFailed, match="nonce"):
        exchange.client_final(server_first_for(client_first, r=client_nonce))


def test_an_error_from_the_agent_and_a_wrong_server_proof_are_refused() -> None:
    exchange = ClientExchange("homeassistant", SECRET, CBIND)
    exchange.client_first()
    with pytest.raises(ScramFailed, match="error 'unknown-user'"):
        exchange.client_final("e=unknown-user")

    exchange = ClientExchange("homeassistant", SECRET, CBIND)
    agent = server()
    server_final = agent.server_final(
        exchange.client_final(agent.server_first(exchange.client_first()))
    )
    forged = "v=" + base64.b64encode(b"\x00" * 32).decode()
    assert forged != server_final
    with pytest.raises(ScramFailed, match="proof"):
        exchange.verify_server_final(forged)


def test_the_agents_proof_for_another_login_is_refused() -> None:
    """A server-final replayed from an earlier login: its signature covers the other nonces."""
    agent = server()
    earlier = ClientExchange("homeassistant", SECRET, CBIND)
    replayed = agent.server_final(earlier.client_final(agent.server_first(earlier.client_first())))
    now = ClientExchange("homeassistant", SECRET, CBIND)
    now.client_final(server().server_first(now.client_first()))
    with pytest.raises(ScramFailed, match="proof"):
        now.verify_server_final(replayed)


def test_messages_out_of_order_are_refused() -> None:
    exchange = ClientExchange("homeassistant", SECRET, CBIND)
    with pytest.raises(ScramFailed, match="order"):
        exchange.verify_server_final("v=AAAA")
    with pytest.raises(ScramFailed, match="order"):
        exchange.client_final("r=x,s=AAAA,i=4096")
    exchange.client_first()
    with pytest.raises(ScramFailed, match="order"):
        exchange.client_first()


scram_like = st.one_of(
    st.text(max_size=150),
    st.builds(
        lambda r, s, i, tail: f"r={r},s={s},i={i}{tail}",
        st.text(max_size=40),
        st.text(max_size=30),
        st.text(max_size=10),
        st.sampled_from(["", ",x=1", ",m=1", ",", ",v"]),
    ),
)


@settings(max_examples=300)
@given(scram_like, st.text(max_size=80))
def test_client_parser_survives_arbitrary_server_messages(first: str, final: str) -> None:
    exchange = ClientExchange("homeassistant", SECRET, CBIND)
    exchange.client_first()
    try:
        exchange.client_final(first)
        exchange.verify_server_final(final)
    except ScramFailed as err:
        assert str(err)
    else:  # pragma: no cover - would mean a made-up server proof passed
        raise AssertionError("an arbitrary server-final passed the proof check")


# ---- with a real agent ---------------------------------------------------------------------


async def test_a_reconnect_reuses_the_keys_and_a_new_secret_does_not(
    agent: RunningAgent, pbkdf2_calls: list[int]
) -> None:
    client = AgentClient(
        "127.0.0.1",
        agent.port,
        client_id="homeassistant",
        secret=agent.secret,
        fingerprint=agent.fingerprint,
    )
    for _ in range(3):
        await client.connect()
        await client.close()
    assert len(pbkdf2_calls) == 1

    # Keys belong to the credentials they came from: a wrong secret is stretched and refused.
    client._secret = generate_secret()
    with pytest.raises(InvalidAuth):
        await client.connect()
    assert len(pbkdf2_calls) == 2


async def test_the_login_stretches_the_secret_off_the_event_loop(
    agent: RunningAgent, pbkdf2_calls: list[int]
) -> None:
    """Inside Home Assistant the loop runs everything else: PBKDF2 goes to the executor."""
    client = agent.client()
    await client.connect()
    await client.close()
    assert len(pbkdf2_calls) == 1
    assert pbkdf2_calls[0] != threading.get_ident()


async def test_a_client_id_that_cannot_exist_is_refused_before_any_login_message(
    agent: RunningAgent,
) -> None:
    client = AgentClient(
        "127.0.0.1",
        agent.port,
        client_id="h\u00e9",
        secret=agent.secret,
        fingerprint=agent.fingerprint,
    )
    with pytest.raises(InvalidAuth, match="printable ASCII"):
        await client.connect()
    assert not client.connected
