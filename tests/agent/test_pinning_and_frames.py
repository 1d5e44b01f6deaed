"""Certificate pinning and binary frames, fed every kind of wrong input a fake agent could send."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from pi_secure_ws_protocol.binary import MAX_HEADER, decode_frame, encode_frame
from pi_secure_ws_protocol.errors import CertificateMismatch, ProtocolError
from pi_secure_ws_protocol.pinning import (
    fingerprint_of_pem,
    format_fingerprint,
    normalize_fingerprint,
    tls_server_end_point,
    verify_ca,
    verify_leaf,
)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
NOW = dt.datetime.now(dt.UTC)


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def certificate(
    subject: str,
    issuer: str,
    public_key: object,
    signing_key: PrivateKey,
    *,
    algorithm: hashes.HashAlgorithm | None = None,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer))
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=30))
    )
    if isinstance(signing_key, ed25519.Ed25519PrivateKey):
        return builder.sign(signing_key, None)
    return builder.sign(signing_key, algorithm or hashes.SHA256())


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def ca_and_leaf(ca_key: PrivateKey) -> tuple[x509.Certificate, str, bytes]:
    ca = certificate("CA", "CA", ca_key.public_key(), ca_key)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate("agent", "CA", leaf_key.public_key(), ca_key)
    return ca, format_fingerprint(der(ca)), der(leaf)


def test_an_rsa_ca_works_as_well() -> None:
    """The agent makes EC keys, but a CA made by other tools (RSA) is checked just as well."""
    ca, fingerprint, leaf = ca_and_leaf(rsa.generate_private_key(65537, 2048))
    assert verify_ca(pem(ca), fingerprint) == ca
    assert verify_leaf(leaf, ca, fingerprint).subject == name("agent")


def test_a_ca_whose_key_type_is_unknown_is_refused() -> None:
    ca, fingerprint, leaf = ca_and_leaf(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(CertificateMismatch):
        verify_leaf(leaf, ca, fingerprint)


def test_a_leaf_signed_by_another_key_with_the_cas_name_is_refused() -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("CA", "CA", ca_key.public_key(), ca_key)
    impostor = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate("agent", "CA", impostor.public_key(), impostor)
    with pytest.raises(CertificateMismatch):
        verify_leaf(der(leaf), ca, format_fingerprint(der(ca)))


def test_a_leaf_of_another_issuer_garbage_and_an_expired_leaf_are_refused() -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("CA", "CA", ca_key.public_key(), ca_key)
    fingerprint = format_fingerprint(der(ca))
    other = certificate("agent", "Other CA", ca_key.public_key(), ca_key)
    with pytest.raises(CertificateMismatch):
        verify_leaf(der(other), ca, fingerprint)
    with pytest.raises(CertificateMismatch):
        verify_leaf(b"\x30\x03not a certificate", ca, fingerprint)
    expired = certificate(
        "agent", "CA", ca_key.public_key(), ca_key, not_after=NOW - dt.timedelta(seconds=1)
    )
    with pytest.raises(CertificateMismatch) as err:
        verify_leaf(der(expired), ca, fingerprint)
    assert err.value.actual == "a certificate outside its validity period"


def test_a_ca_that_is_no_certificate_or_another_is_refused() -> None:
    ca, fingerprint, _leaf = ca_and_leaf(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(CertificateMismatch) as err:
        verify_ca("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", fingerprint)
    assert err.value.actual is None
    other, other_fingerprint, _ = ca_and_leaf(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(CertificateMismatch) as err:
        verify_ca(pem(other), fingerprint)
    assert err.value.actual == other_fingerprint
    with pytest.raises(CertificateMismatch):
        fingerprint_of_pem("not PEM at all")
    assert fingerprint_of_pem(pem(ca)) == fingerprint


def test_fingerprints_are_read_as_people_paste_them() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    expected = ":".join(digest[i : i + 2] for i in range(0, 64, 2)).upper()
    assert normalize_fingerprint(f"SHA256={digest}") == expected  # openssl's own output
    assert normalize_fingerprint(f" {digest[:32]} {digest[32:]} ") == expected
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        normalize_fingerprint(digest[:-1])


@pytest.mark.parametrize(
    ("key", "algorithm", "hashed_with"),
    [
        (rsa.generate_private_key(65537, 2048), hashes.SHA256(), hashlib.sha256),
        (rsa.generate_private_key(65537, 2048), hashes.SHA384(), hashlib.sha384),
        # RFC 5929 4.1: a signature without its own hash (here Ed25519; MD5 and SHA-1, which
        # OpenSSL no longer signs with, likewise) is bound with SHA-256.
        (ed25519.Ed25519PrivateKey.generate(), None, hashlib.sha256),
    ],
)
def test_channel_binding_follows_the_signature_hash(
    key: PrivateKey, algorithm: hashes.HashAlgorithm | None, hashed_with: object
) -> None:
    cert = der(certificate("agent", "agent", key.public_key(), key, algorithm=algorithm))
    assert tls_server_end_point(cert) == hashed_with(cert).digest()  # type: ignore[operator]


# ---- binary frames --------------------------------------------------------------------------


def test_a_frame_round_trips() -> None:
    frame = encode_frame({"id": 7, "content_type": "image/jpeg"}, b"\xff\xd8jpeg")
    assert decode_frame(frame) == ({"id": 7, "content_type": "image/jpeg"}, b"\xff\xd8jpeg")


def test_a_header_too_large_is_not_sent() -> None:
    with pytest.raises(ValueError, match="too large"):
        encode_frame({"pad": "x" * MAX_HEADER}, b"")


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (b"\x00", "too short"),
        (b"\xff\xff" + b"{}", "out of range"),
        (b"\x00\x09" + b"{}", "out of range"),
        (b"\x00\x03" + b"{x}", "not valid JSON"),
        (b"\x00\x02" + b"\xff\xfe", "not valid JSON"),
        (b"\x00\x02" + b"[]", "must be a JSON object"),
        (b"\x00\x01" + b"7" + b"payload", "must be a JSON object"),
    ],
)
def test_a_malformed_frame_is_a_protocol_error(frame: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        decode_frame(frame)
