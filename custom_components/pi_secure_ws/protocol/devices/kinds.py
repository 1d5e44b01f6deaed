"""The device kinds of protocol version 1, as ``hello.devices[].kind`` names them."""

from __future__ import annotations

from enum import StrEnum


class DeviceKind(StrEnum):
    """One kind per module of this package; an agent may report kinds a client does not know."""

    SYSTEM = "system"
    LIGHT = "light"
    SPRINKLER_CONTROLLER = "sprinkler_controller"
    PICTURE_FRAME = "picture_frame"
    CAMERA = "camera"
