"""The agent's private certificate authority and its TLS leaf certificate.

Clients pin the CA by its SHA-256 fingerprint, so the leaf can be renewed (same CA, new key) without
re-pairing. Everything is ECDSA P-256 with SHA-256, as Mozilla's "modern" TLS profile asks.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pi_secure_ws_protocol.pinning import format_fingerprint

from .fsutil import PRIVATE_FILE_MODE, atomic_write

CA_CERT_FILE: Final = "ca.pem"
CA_KEY_FILE: Final = "ca.key"
LEAF_CERT_FILE: Final = "cert.pem"  # the leaf, then the CA
LEAF_KEY_FILE: Final = "key.pem"
PUBLIC_FILE_MODE: Final = 0o644

CA_LIFETIME: Final = dt.timedelta(days=3650)
# sslyze's Mozilla "modern" profile (5.7) refuses a leaf living longer than 90 days; the agent
# renews it on its own well before that, and clients pinned on the CA never notice.
LEAF_LIFETIME: Final = dt.timedelta(days=90)
RENEW_WITHIN_DAYS: Final = 30
# Tolerates a client clock slightly behind the agent's.
BACKDATE: Final = dt.timedelta(hours=1)
DEFAULT_HOSTNAMES: Final = ("localhost",)
DEFAULT_IP_ADDRESSES: Final = ("127.0.0.1", "::1")
# TLS 1.3 key exchange groups, best first; the agent serves the first this Python's ssl accepts.
# Python's ssl can set only one (set_ecdh_curve). X25519 is every current client's first key share,
# so no HelloRetryRequest is needed; some builds (Debian's 3.11.2, Raspberry Pi OS Bookworm's) look
# the name up as an EC curve and refuse it, so they serve prime256v1, which every TLS 1.3 client
# must support. Both are in Mozilla's "modern" profile.
TLS_GROUPS: Final = ("X25519", "prime256v1")


class PkiError(Exception):
    """A certificate or key file is missing or unreadable; the message names the file."""


@dataclass(frozen=True)
class LeafInfo:
    """What ``pi-agent pairing`` and the renewal logic want to know about the current leaf."""

    hostnames: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_after: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def create_ca(agent_id: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA that may sign leaf certificates only (path length 0), valid ~10 years."""
    key = _new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pi_secure_ws"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"pi-agent CA {agent_id}"[:64]),
        ]
    )
    start = _now() - BACKDATE
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hostnames: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A TLS server certificate signed by the CA for the given names, plus localhost and loopback.

    Raises ValueError naming an entry of ``ip_addresses`` that is not an IP address.
    """
    names = _unique([*hostnames, *DEFAULT_HOSTNAMES])
    ips = _unique([*DEFAULT_IP_ADDRESSES, *ip_addresses])
    try:
        parsed_ips = [ipaddress.ip_address(ip) for ip in ips]
    except ValueError as err:
        raise ValueError(f"not an IP address: {err}") from None
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alt_names += [x509.IPAddress(ip) for ip in parsed_ips]
    key = _new_key()
    start = _now() - BACKDATE
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        cleaned = value.strip()
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_pki(
    config_dir: Path,
    agent_id: str,
    hostnames: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
) -> str:
    """Create a new CA and leaf in ``config_dir``; return the CA fingerprint clients pin."""
    ca_cert, ca_key = create_ca(agent_id)
    atomic_write(config_dir / CA_KEY_FILE, _key_pem(ca_key), PRIVATE_FILE_MODE)
    atomic_write(config_dir / CA_CERT_FILE, _cert_pem(ca_cert), PUBLIC_FILE_MODE)
    _write_leaf(config_dir, ca_cert, ca_key, hostnames, ip_addresses)
    return format_fingerprint(ca_cert.public_bytes(serialization.Encoding.DER))


def _write_leaf(
    config_dir: Path,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hostnames: Sequence[str],
    ip_addresses: Sequence[str],
) -> None:
    leaf, leaf_key = issue_leaf(ca_cert, ca_key, hostnames, ip_addresses)
    # Key first: a crash in between leaves a new key with the old cert, which load_leaf reports,
    # rather than a new cert with an old key that TLS would reject at every handshake.
    atomic_write(config_dir / LEAF_KEY_FILE, _key_pem(leaf_key), PRIVATE_FILE_MODE)
    atomic_write(
        config_dir / LEAF_CERT_FILE, _cert_pem(leaf) + _cert_pem(ca_cert), PUBLIC_FILE_MODE
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PkiError(f"{path}: missing (run `pi-agent init`)") from None
    except OSError as err:
        raise PkiError(f"{path}: cannot read: {err.strerror}") from None


def load_ca_cert(config_dir: Path) -> x509.Certificate:
    path = config_dir / CA_CERT_FILE
    try:
        return x509.load_pem_x509_certificate(_read(path))
    except ValueError:
        raise PkiError(f"{path}: not a PEM certificate") from None


def load_ca_key(config_dir: Path) -> ec.EllipticCurvePrivateKey:
    return _load_ec_key(config_dir / CA_KEY_FILE)


def load_leaf_cert(config_dir: Path) -> x509.Certificate:
    """The leaf certificate: the first certificate in ``cert.pem``."""
    path = config_dir / LEAF_CERT_FILE
    try:
        chain = x509.load_pem_x509_certificates(_read(path))
    except ValueError:
        raise PkiError(f"{path}: not a PEM certificate chain") from None
    return chain[0]


def load_leaf_key(config_dir: Path) -> ec.EllipticCurvePrivateKey:
    return _load_ec_key(config_dir / LEAF_KEY_FILE)


def _load_ec_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError):
        raise PkiError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path}: not an elliptic-curve key")
    return key


def ca_pem(config_dir: Path) -> str:
    """The CA certificate as PEM text (the agent sends it before login so clients can pin it)."""
    return _cert_pem(load_ca_cert(config_dir)).decode()


def ca_fingerprint(config_dir: Path) -> str:
    """The SHA-256 fingerprint of the CA certificate, ``AB:CD:...``: what clients pin."""
    return format_fingerprint(load_ca_cert(config_dir).public_bytes(serialization.Encoding.DER))


def leaf_info(config_dir: Path) -> LeafInfo:
    leaf = load_leaf_cert(config_dir)
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return LeafInfo((), (), leaf.not_valid_after_utc)
    return LeafInfo(
        hostnames=tuple(san.get_values_for_type(x509.DNSName)),
        ip_addresses=tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress)),
        not_after=leaf.not_valid_after_utc,
    )


def renew_leaf_if_needed(
    config_dir: Path,
    within_days: int = RENEW_WITHIN_DAYS,
    *,
    hostnames: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    force: bool = False,
) -> bool:
    """Issue a new leaf from the same CA when the current one expires within ``within_days``,
    is missing or unreadable, does not match its key, or lacks one of the given names.

    The new leaf keeps the current names and adds the given ones. Returns True when it renewed.
    """
    ca_cert = load_ca_cert(config_dir)
    ca_key = load_ca_key(config_dir)
    try:
        info = leaf_info(config_dir)
        key_matches = _leaf_matches_key(config_dir)
    except PkiError:
        info, key_matches = None, False
    wanted_names = _unique([*(info.hostnames if info else ()), *hostnames])
    wanted_ips = _unique([*(info.ip_addresses if info else ()), *ip_addresses])
    needed = (
        force
        or info is None
        or not key_matches
        or info.not_after - _now() <= dt.timedelta(days=within_days)
        or not set(hostnames) <= set(info.hostnames)
        or not {_canonical_ip(ip) for ip in ip_addresses} <= set(info.ip_addresses)
    )
    if needed:
        _write_leaf(config_dir, ca_cert, ca_key, wanted_names, wanted_ips)
    return needed


def _canonical_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _leaf_matches_key(config_dir: Path) -> bool:
    leaf_public = load_leaf_cert(config_dir).public_key()
    key_public = load_leaf_key(config_dir).public_key()
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return leaf_public.public_bytes(*raw) == key_public.public_bytes(*raw)


def server_ssl_context(config_dir: Path) -> ssl.SSLContext:
    """TLS 1.3 only, no compression, no client certificate (clients log in with SCRAM instead)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.options |= ssl.OP_NO_COMPRESSION
    context.verify_mode = ssl.CERT_NONE
    set_key_exchange_group(context)
    load_server_cert(context, config_dir)
    return context


def set_key_exchange_group(context: ssl.SSLContext) -> str:
    """Serve the best of TLS_GROUPS that this Python's ssl accepts; returns its name."""
    for group in TLS_GROUPS[:-1]:
        try:
            context.set_ecdh_curve(group)
        except (ssl.SSLError, ValueError):
            continue  # not a failure: the next group is as modern, only less common as a key share
        return group
    context.set_ecdh_curve(TLS_GROUPS[-1])
    return TLS_GROUPS[-1]


def load_server_cert(context: ssl.SSLContext, config_dir: Path) -> None:
    """Load the leaf and its key into ``context``, or say clearly why they cannot be loaded."""
    for name in (LEAF_CERT_FILE, LEAF_KEY_FILE):
        if not (config_dir / name).is_file():
            raise PkiError(f"{config_dir / name}: missing (run `pi-agent init`)")
    try:
        context.load_cert_chain(config_dir / LEAF_CERT_FILE, config_dir / LEAF_KEY_FILE)
    except (ssl.SSLError, OSError) as err:
        raise PkiError(
            f"{config_dir / LEAF_CERT_FILE}, {LEAF_KEY_FILE}: cannot load the certificate and "
            f"key (do they belong together?): {err}"
        ) from None
