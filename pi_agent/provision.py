"""Setting an agent up and managing who may log in: ``init``, pairing details, clients and the
certificate. Typed functions the command line and ``install-service`` both call.

They raise :class:`~pi_agent.errors.ProvisionError`, ConfigError, PkiError, CredentialError or
OSError, each with a message fit to show as it is; printing is the caller's job.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pi_secure_ws_protocol.const import DEFAULT_CLIENT_ID, DEFAULT_PORT, Role

from . import pki
from .config import CONFIG_FILE, AgentConfig, load_config
from .config_template import render_agent_toml
from .console import PROG
from .credentials import (
    CLIENTS_FILE,
    ClientRecord,
    CredentialError,
    CredentialStore,
    validate_client_id,
)
from .devices.registry import REGISTRY
from .errors import ConfigError, ProvisionError
from .fsutil import STATE_DIR_NAME, atomic_write, check_private, ensure_private_dir
from .sample_pictures import write_sample_pictures

PI_MODEL_PATH: Final = Path("/proc/device-tree/model")
ADD_CLIENT_HINT: Final = f"add one with `{PROG} client add NAME --role control`"
SHOWN_ONCE_NOTE: Final = (
    "The secret is shown only this once: the agent keeps only a verifier of it."
)


@dataclass(frozen=True)
class NewAgent:
    """What ``init`` made, and the first client's secret (shown once, never stored)."""

    config_dir: Path
    hardware: str
    host: str
    port: int
    fingerprint: str
    client_id: str
    secret: str
    agent_id: str
    name: str

    def pairing(self) -> dict[str, Any]:
        """The pairing details as ``init --json`` prints them."""
        return {
            "host": self.host,
            "port": self.port,
            "fingerprint": self.fingerprint,
            "client_id": self.client_id,
            "secret": self.secret,
            "agent_id": self.agent_id,
            "name": self.name,
        }


@dataclass(frozen=True)
class Pairing:
    """What a client needs to pair, never a secret."""

    host: str
    port: int
    fingerprint: str
    agent_id: str
    name: str
    clients: tuple[ClientRecord, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "fingerprint": self.fingerprint,
            "agent_id": self.agent_id,
            "name": self.name,
            "clients": [{"client_id": c.client_id, "role": c.role.label} for c in self.clients],
        }

    def lines(self) -> list[str]:
        lines = [
            f"{'name:':<13}{self.name}",
            f"{'host:':<13}{self.host}",
            f"{'port:':<13}{self.port}",
            f"{'fingerprint:':<13}{self.fingerprint}",
            f"{'agent id:':<13}{self.agent_id}",
            "clients:",
        ]
        lines += [f"  {client.client_id} ({client.role.label})" for client in self.clients]
        if not self.clients:
            lines.append(f"  none ({ADD_CLIENT_HINT})")
        return lines


@dataclass(frozen=True)
class IssuedSecret:
    """A client's new secret, with what is known of where to reach the agent (best effort)."""

    client_id: str
    role: Role
    secret: str
    host: str | None = None
    port: int | None = None
    fingerprint: str | None = None

    def as_json(self) -> dict[str, Any]:
        where = {"host": self.host, "port": self.port, "fingerprint": self.fingerprint}
        return {
            **{key: value for key, value in where.items() if value is not None},
            "client_id": self.client_id,
            "role": self.role.label,
            "secret": self.secret,
        }


def secret_lines(details: dict[str, Any], role: str) -> list[str]:
    """The pairing block printed when a secret is created (init, client add and rotate)."""
    lines = ["Pair a client with:"]
    for label, key in (
        ("host", "host"),
        ("port", "port"),
        ("fingerprint", "fingerprint"),
        ("client id", "client_id"),
    ):
        if details.get(key) is not None:
            lines.append(f"  {label + ':':<13}{details[key]}")
    lines += [f"  {'role:':<13}{role}", f"  {'secret:':<13}{details['secret']}", ""]
    lines.append(SHOWN_ONCE_NOTE)
    return lines


# --- init -----------------------------------------------------------------------------------------


def is_raspberry_pi(model_path: Path = PI_MODEL_PATH) -> bool:
    try:
        return "Raspberry Pi" in model_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def split_hosts(hosts: Sequence[str]) -> tuple[list[str], list[str]]:
    """Host names and IP addresses apart, as the certificate lists them."""
    names: list[str] = []
    ips: list[str] = []
    for host in hosts:
        try:
            ips.append(str(ipaddress.ip_address(host)))
        except ValueError:
            names.append(host)
    return names, ips


def init_agent(
    config_dir: Path,
    *,
    host: str | None = None,
    port: int = DEFAULT_PORT,
    name: str | None = None,
    hardware: str = "auto",
    camera: str | None = None,
    force: bool = False,
) -> NewAgent:
    """A configuration, a private CA with its leaf certificate, and the first client.

    ``hardware`` "auto" is "gpio" on a Raspberry Pi, else "mock" (demo devices and pictures).
    An existing configuration is replaced only with ``force`` (a new CA: every client pairs
    again)."""
    config_dir = config_dir.expanduser().absolute()
    existing = [
        name
        for name in (CONFIG_FILE, CLIENTS_FILE, pki.CA_KEY_FILE)
        if (config_dir / name).exists()
    ]
    if existing and not force:
        raise ProvisionError(
            f"{config_dir} already holds an agent configuration ({', '.join(existing)}); "
            "use --force to replace it (a new CA: every client must pair again)"
        )
    hostname = socket.gethostname() or "raspberrypi"
    host = host or (hostname if "." in hostname else f"{hostname}.local")
    name = name or hostname
    if hardware == "auto":
        hardware = "gpio" if is_raspberry_pi() else "mock"

    ensure_private_dir(config_dir)
    state_dir = config_dir / STATE_DIR_NAME
    ensure_private_dir(state_dir)
    pictures_dir = state_dir / "pictures"
    if hardware == "mock":
        write_sample_pictures(pictures_dir)

    agent_id = uuid.uuid4().hex
    atomic_write(config_dir / "agent_id", f"{agent_id}\n".encode())
    toml_text = render_agent_toml(
        name=name,
        port=port,
        advertise_host=host,
        hardware=hardware,
        pictures_dir=pictures_dir,
        camera_backend=camera,
    )
    atomic_write(config_dir / CONFIG_FILE, toml_text.encode())

    hostnames, ip_addresses = split_hosts([host, hostname])
    fingerprint = pki.write_pki(config_dir, agent_id, hostnames, ip_addresses)

    store = CredentialStore.create(config_dir / CLIENTS_FILE)
    secret = store.add(DEFAULT_CLIENT_ID, Role.CONTROL)
    store.save()
    return NewAgent(
        config_dir=config_dir,
        hardware=hardware,
        host=host,
        port=port,
        fingerprint=fingerprint,
        client_id=DEFAULT_CLIENT_ID,
        secret=secret,
        agent_id=agent_id,
        name=name,
    )


# --- reading, checking, renewing ------------------------------------------------------------------


def read_config(config_dir: Path) -> AgentConfig:
    """agent.toml with every device section validated (raises ConfigError)."""
    return load_config(config_dir, REGISTRY)


def check_config(config_dir: Path) -> list[str]:
    """Every problem of the configuration, the file modes, the certificates and the clients."""
    problems: list[str] = []
    state_dir: Path | None = None
    try:
        state_dir = read_config(config_dir).agent.state_dir
    except ConfigError as err:
        problems.extend(err.problems)
    problems.extend(check_private(config_dir, state_dir))
    problems.extend(_check_pki(config_dir))
    try:
        CredentialStore.load(config_dir / CLIENTS_FILE)
    except CredentialError as err:
        problems.append(str(err))
    return problems


def _check_pki(config_dir: Path) -> list[str]:
    try:
        pki.ca_fingerprint(config_dir)
        pki.load_ca_key(config_dir)
        info = pki.leaf_info(config_dir)
        pki.load_leaf_key(config_dir)
        pki.server_ssl_context(config_dir)
    except pki.PkiError as err:
        return [str(err)]
    if info.not_after <= pki._now():
        return [
            f"{config_dir / pki.LEAF_CERT_FILE}: expired on {info.not_after:%Y-%m-%d}; "
            f"run `{PROG} renew-cert --config-dir {config_dir}`"
        ]
    return []


def _pairing_host(config_dir: Path, advertise_host: str | None) -> str:
    if advertise_host:
        return advertise_host
    try:
        names = [n for n in pki.leaf_info(config_dir).hostnames if n != "localhost"]
    except pki.PkiError:
        names = []
    return names[0] if names else socket.gethostname()


def pairing(config_dir: Path) -> Pairing:
    config = read_config(config_dir)
    store = CredentialStore.load(config_dir / CLIENTS_FILE)
    return Pairing(
        host=_pairing_host(config_dir, config.agent.advertise_host),
        port=config.agent.port,
        fingerprint=pki.ca_fingerprint(config_dir),
        agent_id=config.agent_id,
        name=config.agent.name,
        clients=tuple(store.clients()),
    )


def renew_certificate(config_dir: Path, *, force: bool = False) -> tuple[bool, dt.datetime]:
    """Renew the leaf certificate when close to expiry (or ``force``); (renewed, valid until)."""
    config = read_config(config_dir)
    hosts = [config.agent.advertise_host] if config.agent.advertise_host else []
    names, ips = split_hosts(hosts)
    renewed = pki.renew_leaf_if_needed(config_dir, hostnames=names, ip_addresses=ips, force=force)
    return renewed, pki.leaf_info(config_dir).not_after


# --- clients --------------------------------------------------------------------------------------


def _store(config_dir: Path) -> CredentialStore:
    return CredentialStore.load(config_dir / CLIENTS_FILE)


def _issued(config_dir: Path, client_id: str, role: Role, secret: str) -> IssuedSecret:
    """Host, port and fingerprint beside a new secret; best effort, so a config typo does not
    stop client management."""
    host: str | None = None
    port: int | None = None
    fingerprint: str | None = None
    try:
        config = read_config(config_dir)
        host = _pairing_host(config_dir, config.agent.advertise_host)
        port = config.agent.port
    except ConfigError:
        pass
    with contextlib.suppress(pki.PkiError):
        fingerprint = pki.ca_fingerprint(config_dir)
    return IssuedSecret(client_id, role, secret, host, port, fingerprint)


def add_client(config_dir: Path, client_id: str, role: Role) -> IssuedSecret:
    client_id = validate_client_id(client_id)
    store = _store(config_dir)
    secret = store.add(client_id, role)
    store.save()
    return _issued(config_dir, client_id, role, secret)


def rotate_client(config_dir: Path, client_id: str) -> IssuedSecret:
    store = _store(config_dir)
    secret = store.rotate(client_id)
    store.save()
    record = store.get(client_id)
    assert record is not None
    return _issued(config_dir, client_id, record.role, secret)


def remove_client(config_dir: Path, client_id: str) -> None:
    store = _store(config_dir)
    store.remove(client_id)
    store.save()


def list_clients(config_dir: Path) -> list[ClientRecord]:
    return _store(config_dir).clients()
