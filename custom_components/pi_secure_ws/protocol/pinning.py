"""Certificate pinning: a client trusts one private CA, named by its SHA-256 fingerprint."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from .errors import CertificateMismatch

_HEX = re.compile(r"^[0-9A-F]{64}$")


def format_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate as ``AB:CD:...``, as ``openssl x509 -fingerprint`` shows it."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def normalize_fingerprint(text: str) -> str:
    """Accept a fingerprint with or without colons or spaces, any case; return the ``AB:CD`` form.

    Raises ValueError with a clear message when it is not 32 bytes of hex.
    """
    compact = re.sub(r"[\s:]", "", text).upper()
    if compact.startswith("SHA256"):
        compact = compact.removeprefix("SHA256").lstrip("=")
    if not _HEX.match(compact):
        raise ValueError("a fingerprint is 64 hexadecimal digits (colons optional)")
    return ":".join(compact[i : i + 2] for i in range(0, 64, 2))


def fingerprints_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(normalize_fingerprint(a).encode(), normalize_fingerprint(b).encode())


def verify_ca(ca_pem: str, fingerprint: str) -> x509.Certificate:
    """Check that ``ca_pem`` is a CA certificate with the pinned fingerprint; return it."""
    try:
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
    except ValueError:
        raise CertificateMismatch(normalize_fingerprint(fingerprint), None) from None
    actual = format_fingerprint(ca.public_bytes(Encoding.DER))
    if not fingerprints_equal(actual, fingerprint):
        raise CertificateMismatch(normalize_fingerprint(fingerprint), actual)
    return ca


def fingerprint_of_pem(ca_pem: str) -> str:
    """The fingerprint of a PEM certificate; CertificateMismatch when it is not one."""
    try:
        cert = x509.load_pem_x509_certificate(ca_pem.encode())
    except ValueError:
        raise CertificateMismatch("(none pinned yet)", None) from None
    return format_fingerprint(cert.public_bytes(Encoding.DER))


def verify_leaf(leaf_der: bytes, ca: x509.Certificate, fingerprint: str) -> x509.Certificate:
    """Check that the agent's TLS certificate is signed by the pinned CA and valid now."""
    expected = normalize_fingerprint(fingerprint)
    try:
        leaf = x509.load_der_x509_certificate(leaf_der)
    except ValueError:
        raise CertificateMismatch(expected, None) from None
    if leaf.issuer != ca.subject:
        raise CertificateMismatch(expected, None)
    public_key = ca.public_key()
    try:
        hash_alg = leaf.signature_hash_algorithm
        if isinstance(public_key, ec.EllipticCurvePublicKey) and hash_alg is not None:
            public_key.verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(hash_alg))
        elif isinstance(public_key, rsa.RSAPublicKey) and hash_alg is not None:
            public_key.verify(
                leaf.signature, leaf.tbs_certificate_bytes, padding.PKCS1v15(), hash_alg
            )
        else:
            raise CertificateMismatch(expected, None)
    except InvalidSignature:
        raise CertificateMismatch(expected, None) from None
    now = dt.datetime.now(dt.UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise CertificateMismatch(expected, "a certificate outside its validity period")
    return leaf


def tls_server_end_point(cert_der: bytes) -> bytes:
    """RFC 5929 channel binding data: the certificate's hash with its signature's hash function
    (SHA-256 when that is MD5 or SHA-1)."""
    cert = x509.load_der_x509_certificate(cert_der)
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or isinstance(algorithm, hashes.MD5 | hashes.SHA1):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert_der)
    return digest.finalize()
