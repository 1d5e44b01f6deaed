"""The pi_secure_ws wire protocol and its client: HA-free, typed, shared by agent and integration.

Inside Home Assistant this package is ``custom_components.pi_secure_ws.protocol``; the agent
installs the very same files as ``pi_secure_ws_protocol``. Modules import each other relatively
so both names work.
"""

from __future__ import annotations

from .const import DEFAULT_CLIENT_ID, DEFAULT_PORT, PROTOCOL_VERSION, CloseCode, Role
from .errors import (
    Blocked,
    CannotConnect,
    CertificateMismatch,
    CommandError,
    ErrorKind,
    ErrorMeaning,
    InvalidAuth,
    PiSecureWsError,
    ProtocolError,
    Recovery,
    RequestTimeout,
    ServerAuthFailed,
    classify,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_PORT",
    "PROTOCOL_VERSION",
    "Blocked",
    "CannotConnect",
    "CertificateMismatch",
    "CloseCode",
    "CommandError",
    "ErrorKind",
    "ErrorMeaning",
    "InvalidAuth",
    "PiSecureWsError",
    "ProtocolError",
    "Recovery",
    "RequestTimeout",
    "Role",
    "ServerAuthFailed",
    "classify",
]
