"""The device contract: per device kind, its capabilities, state and actions, typed.

One module per kind (``system``, ``light``, ``sprinklers``, ``frame``, ``camera``) holds frozen
dataclasses with ``from_wire`` (validating: a bad field is a ProtocolError naming it) and
``to_wire`` (exactly the agent's wire form), the kind's action names and their parameters. The
agent builds its wire dicts through them; the client decodes every device once, at the edge.
"""

from __future__ import annotations

from .camera import CameraAction, CameraCapabilities, CameraState
from .decoder import DeviceDecoder, DeviceInfo
from .frame import FrameAction, FrameCapabilities, FrameState
from .kinds import DeviceKind
from .light import LightAction, LightCapabilities, LightState
from .registry import (
    CONTRACTS,
    Capabilities,
    DeviceState,
    KindContract,
    decode_capabilities,
    decode_state,
)
from .sprinklers import SprinklerAction, SprinklerCapabilities, SprinklerState
from .system import SystemAction, SystemCapabilities, SystemState
from .wire import ActionParams, Opaque, WireModel

__all__ = [
    "CONTRACTS",
    "ActionParams",
    "CameraAction",
    "CameraCapabilities",
    "CameraState",
    "Capabilities",
    "DeviceDecoder",
    "DeviceInfo",
    "DeviceKind",
    "DeviceState",
    "FrameAction",
    "FrameCapabilities",
    "FrameState",
    "KindContract",
    "LightAction",
    "LightCapabilities",
    "LightState",
    "Opaque",
    "SprinklerAction",
    "SprinklerCapabilities",
    "SprinklerState",
    "SystemAction",
    "SystemCapabilities",
    "SystemState",
    "WireModel",
    "decode_capabilities",
    "decode_state",
]
