"""The private CA, the leaf certificate, renewal without re-pairing, and the TLS 1.3 context."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from pi_secure_ws_protocol.pinning import format_fingerprint, verify_ca, verify_leaf

from pi_agent import pki
from pi_agent.fsutil import ensure_private_dir


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "config"
    ensure_private_dir(directory)
    pki.write_pki(directory, "0123abcd", ["gardenpi.local"], ["192.168.1.20"])
    return directory


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_files_and_modes(config_dir: Path) -> None:
    assert _mode(config_dir / "ca.key") == 0o600
    assert _mode(config_dir / "key.pem") == 0o600
    assert _mode(config_dir / "ca.pem") == 0o644
    assert _mode(config_dir / "cert.pem") == 0o644
    chain = x509.load_pem_x509_certificates((config_dir / "cert.pem").read_bytes())
    assert len(chain) == 2
    assert chain[1] == pki.load_ca_cert(config_dir)
    assert chain[0] == pki.load_leaf_cert(config_dir)


def test_fingerprint_is_the_ca_sha256(config_dir: Path) -> None:
    fingerprint = pki.ca_fingerprint(config_dir)
    assert fingerprint == format_fingerprint(_der(pki.load_ca_cert(config_dir)))
    assert len(fingerprint) == 95
    # What the client library checks before it sends anything.
    assert verify_ca(pki.ca_pem(config_dir), fingerprint) == pki.load_ca_cert(config_dir)


def test_ca_certificate(config_dir: Path) -> None:
    ca = pki.load_ca_cert(config_dir)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert not usage.digital_signature
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP256R1)
    assert isinstance(ca.signature_hash_algorithm, hashes.SHA256)
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert dt.timedelta(days=3600) < lifetime < dt.timedelta(days=3700)
    assert "0123abcd" in ca.subject.rfc4514_string()


def test_leaf_certificate(config_dir: Path) -> None:
    leaf = pki.load_leaf_cert(config_dir)
    ca = pki.load_ca_cert(config_dir)
    verify_leaf(_der(leaf), ca, pki.ca_fingerprint(config_dir))
    san = _san(leaf)
    assert san.get_values_for_type(x509.DNSName) == ["gardenpi.local", "localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
        ipaddress.ip_address("192.168.1.20"),
    }
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA256)
    public = leaf.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP256R1)
    # Mozilla "modern" (as sslyze checks it) caps a leaf's life at 90 days.
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days <= 90
    assert leaf.not_valid_before_utc <= dt.datetime.now(dt.UTC)


def test_issue_leaf_rejects_bad_ip() -> None:
    ca, key = pki.create_ca("x")
    with pytest.raises(ValueError, match="not an IP address"):
        pki.issue_leaf(ca, key, ["host"], ["999.1.1.1"])


def test_no_renewal_when_fresh(config_dir: Path) -> None:
    before = (config_dir / "cert.pem").read_bytes()
    assert pki.renew_leaf_if_needed(config_dir) is False
    assert (config_dir / "cert.pem").read_bytes() == before


def test_renewal_keeps_ca_and_names(config_dir: Path) -> None:
    fingerprint = pki.ca_fingerprint(config_dir)
    old_leaf = pki.load_leaf_cert(config_dir)
    old_key = (config_dir / "key.pem").read_bytes()
    # A 90-day leaf is always within 100 days of expiry.
    assert pki.renew_leaf_if_needed(config_dir, within_days=100) is True
    new_leaf = pki.load_leaf_cert(config_dir)
    assert new_leaf.serial_number != old_leaf.serial_number
    assert (config_dir / "key.pem").read_bytes() != old_key
    assert pki.ca_fingerprint(config_dir) == fingerprint
    verify_leaf(_der(new_leaf), pki.load_ca_cert(config_dir), fingerprint)
    assert _san(new_leaf) == _san(old_leaf)
    assert _mode(config_dir / "key.pem") == 0o600


def test_renewal_for_a_new_name(config_dir: Path) -> None:
    assert pki.renew_leaf_if_needed(config_dir, hostnames=["gardenpi.local"]) is False
    assert pki.renew_leaf_if_needed(config_dir, hostnames=["pi.example"]) is True
    names = pki.leaf_info(config_dir).hostnames
    assert set(names) == {"gardenpi.local", "localhost", "pi.example"}
    assert pki.renew_leaf_if_needed(config_dir, ip_addresses=["192.168.1.20"]) is False


def test_renewal_repairs_missing_or_mismatched_leaf(config_dir: Path) -> None:
    (config_dir / "key.pem").write_bytes((config_dir / "ca.key").read_bytes())
    assert pki.renew_leaf_if_needed(config_dir) is True
    assert pki.renew_leaf_if_needed(config_dir) is False
    (config_dir / "cert.pem").unlink()
    assert pki.renew_leaf_if_needed(config_dir) is True
    pki.server_ssl_context(config_dir)


def test_missing_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(pki.PkiError, match=r"ca\.pem: missing"):
        pki.ca_fingerprint(tmp_path)
    (tmp_path / "ca.pem").write_text("garbage")
    with pytest.raises(pki.PkiError, match=r"ca\.pem: not a PEM certificate"):
        pki.ca_fingerprint(tmp_path)
    with pytest.raises(pki.PkiError, match=r"cert\.pem: missing"):
        pki.server_ssl_context(tmp_path)


def test_ssl_context_refuses_a_key_of_another_cert(config_dir: Path) -> None:
    (config_dir / "key.pem").write_bytes((config_dir / "ca.key").read_bytes())
    with pytest.raises(pki.PkiError, match="cannot load the certificate and key"):
        pki.server_ssl_context(config_dir)


async def _handshake(
    config_dir: Path, client: ssl.SSLContext, server_context: ssl.SSLContext | None = None
) -> str | None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(
        handle, "127.0.0.1", 0, ssl=server_context or pki.server_ssl_context(config_dir)
    )
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname="localhost"
        )
        ssl_object = writer.get_extra_info("ssl_object")
        version = ssl_object.version() if ssl_object else None
        writer.close()
        return version
    finally:
        server.close()
        await server.wait_closed()


async def test_tls13_handshake_with_the_pinned_ca(config_dir: Path) -> None:
    client = ssl.create_default_context(cafile=str(config_dir / "ca.pem"))
    assert await _handshake(config_dir, client) == "TLSv1.3"


async def test_tls12_client_is_refused(config_dir: Path) -> None:
    client = ssl.create_default_context(cafile=str(config_dir / "ca.pem"))
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    # The server answers with a protocol_version alert or drops the connection.
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await _handshake(config_dir, client)


def _client_offering(config_dir: Path, group: str) -> ssl.SSLContext:
    client = ssl.create_default_context(cafile=str(config_dir / "ca.pem"))
    client.set_ecdh_curve(group)  # the only group the client offers
    return client


def _accepts_x25519() -> bool:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ecdh_curve("X25519")
    except ssl.SSLError:
        return False
    return True


async def test_key_exchange_group_is_x25519_where_this_python_allows_it(
    config_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    group = pki.set_key_exchange_group(context)
    # Debian's 3.11.2 (Raspberry Pi OS Bookworm) refuses X25519; pyenv's and newer Pythons take it.
    assert group == ("X25519" if _accepts_x25519() else "prime256v1")
    assert not caplog.records  # a Python without X25519 is normal, not worth a log line
    # The agent's own context serves exactly that group: a client offering only it gets in, a
    # client offering only a group outside the modern profile does not.
    assert await _handshake(config_dir, _client_offering(config_dir, group)) == "TLSv1.3"
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await _handshake(config_dir, _client_offering(config_dir, "secp521r1"))


class _ContextWithoutX25519(ssl.SSLContext):
    """What Debian's 3.11.2 ssl does with set_ecdh_curve("X25519"), on any Python."""

    def set_ecdh_curve(self, name: str, /) -> None:
        if name == "X25519":
            raise ssl.SSLError(129, "[EC: UNKNOWN_GROUP] unknown group (_ssl.c:4346)")
        super().set_ecdh_curve(name)


async def test_key_exchange_falls_back_to_prime256v1(config_dir: Path) -> None:
    context = _ContextWithoutX25519(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    assert pki.set_key_exchange_group(context) == "prime256v1"
    pki.load_server_cert(context, config_dir)
    # A default client (which offers X25519 first) still gets in, after a HelloRetryRequest.
    default_client = ssl.create_default_context(cafile=str(config_dir / "ca.pem"))
    assert await _handshake(config_dir, default_client, context) == "TLSv1.3"
    assert await _handshake(config_dir, _client_offering(config_dir, "prime256v1"), context)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await _handshake(config_dir, _client_offering(config_dir, "secp384r1"), context)


async def test_other_ca_is_refused_by_a_verifying_client(config_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    ensure_private_dir(other)
    pki.write_pki(other, "other")
    client = ssl.create_default_context(cafile=str(other / "ca.pem"))
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(config_dir, client)


async def test_reloaded_context_presents_the_renewed_leaf(config_dir: Path) -> None:
    context = pki.server_ssl_context(config_dir)
    assert pki.renew_leaf_if_needed(config_dir, force=True)
    pki.load_server_cert(context, config_dir)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    client = ssl.create_default_context(cafile=str(config_dir / "ca.pem"))
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname="localhost"
        )
        presented = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert presented == _der(pki.load_leaf_cert(config_dir))
