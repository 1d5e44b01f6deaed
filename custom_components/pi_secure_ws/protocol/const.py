"""Constants of the pi_secure_ws wire protocol, shared by the agent and every client."""

from __future__ import annotations

from enum import IntEnum
from typing import Final

PROTOCOL_VERSION: Final = 1
# Offered by the client and required by the agent: another protocol's client fails at the upgrade.
SUBPROTOCOL: Final = "pi-secure-ws.v1"
PATH: Final = "/v1"
MECHANISM: Final = "SCRAM-SHA-256-PLUS"
CHANNEL_BINDING: Final = "tls-server-end-point"
DEFAULT_PORT: Final = 8765
DEFAULT_CLIENT_ID: Final = "homeassistant"
ZEROCONF_TYPE: Final = "_pi-secure-ws._tcp.local."

# Frames before login: text only, at most this many bytes.
PRELOGIN_MAX_FRAME: Final = 4096

# Error codes of "error" messages (messages.py re-exports them; errors.py classifies them).
ERR_INVALID_MESSAGE: Final = "invalid_message"
ERR_UNKNOWN_TYPE: Final = "unknown_type"
ERR_UNKNOWN_DEVICE: Final = "unknown_device"
ERR_UNKNOWN_ACTION: Final = "unknown_action"
ERR_INVALID_PARAMS: Final = "invalid_params"
ERR_FORBIDDEN: Final = "forbidden"
ERR_DEVICE_ERROR: Final = "device_error"
ERR_REFUSED: Final = "refused"  # the device understood and said no (limits, rain delay, ...)
ERR_RATE_LIMITED: Final = "rate_limited"
ERR_INTERNAL: Final = "internal_error"
ERR_UNKNOWN_STREAM: Final = "unknown_stream"


class CloseCode(IntEnum):
    """WebSocket close codes the agent uses; 4000-4999 are private-use codes (RFC 6455 7.4.2)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013  # the agent holds all the sessions it allows
    PROTOCOL_ERROR = 4400
    INVALID_AUTH = 4401
    CREDENTIALS_REVOKED = 4403
    LOGIN_TIMEOUT = 4408
    BLOCKED = 4429


class Role(IntEnum):
    """What a client may do; a higher value may do everything a lower one may."""

    VIEWER = 1  # state, pictures and camera
    CONTROL = 2  # device commands
    ADMIN = 3  # system actions (restart, reboot)

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(
                f"unknown role {value!r}: expected one of {', '.join(r.label for r in cls)}"
            ) from None

    @property
    def label(self) -> str:
        return self.name.lower()
