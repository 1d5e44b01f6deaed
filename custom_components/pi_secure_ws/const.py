"""Constants of the Pi Secure WS integration."""

from __future__ import annotations

import logging
from typing import Final

from homeassistant.const import Platform

DOMAIN: Final = "pi_secure_ws"
LOGGER: Final = logging.getLogger(__package__)

CONF_CLIENT_ID: Final = "client_id"
CONF_SECRET: Final = "secret"  # noqa: S105 - the name of a form field
CONF_FINGERPRINT: Final = "fingerprint"
CONF_CA_PEM: Final = "ca_pem"

# Options.
CONF_CAMERA_FPS: Final = "camera_fps"
DEFAULT_CAMERA_FPS: Final = 5
MAX_CAMERA_FPS: Final = 15
CONF_REQUEST_TIMEOUT: Final = "request_timeout"
DEFAULT_REQUEST_TIMEOUT: Final = 10.0

# Zeroconf TXT record keys the agent advertises.
TXT_AGENT_ID: Final = "agent_id"
TXT_VERSION: Final = "version"

# Device kinds are the protocol's: protocol.devices.DeviceKind.

# Services.
SERVICE_RUN_ZONE: Final = "run_zone"
SERVICE_STOP_ALL: Final = "stop_all"
SERVICE_SHOW_PICTURE: Final = "show_picture"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_DURATION: Final = "duration"
ATTR_NAME: Final = "name"

PLATFORMS: Final = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.CAMERA,
    Platform.DATETIME,
    Platform.IMAGE,
    Platform.LIGHT,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
    Platform.VALVE,
]
# A viewer may read and watch but not command: it gets no entity it could not use.
VIEWER_PLATFORMS: Final = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.CAMERA,
    Platform.IMAGE,
    Platform.SENSOR,
]
