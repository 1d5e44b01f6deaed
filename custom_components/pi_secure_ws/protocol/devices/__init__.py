"""The device contract: per device kind, its capabilities, state and actions, typed.

One module per kind (``system``, ``light``, ``sprinklers``, ``frame``, ``camera``) holds frozen
dataclasses with ``from_wire`` (validating: a bad field is a ProtocolError naming it) and
``to_wire`` (exactly the agent's wire form), the kind's action names and their parameters. The
agent builds its wire dicts through them; the client decodes every device once, at the edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .camera import CameraAction, CameraCapabilities, CameraState
from .frame import FrameAction, FrameCapabilities, FrameState
from .kinds import DeviceKind
from .light import LightAction, LightCapabilities, LightState
from .sprinklers import SprinklerAction, SprinklerCapabilities, SprinklerState
from .system import SystemAction, SystemCapabilities, SystemState
from .wire import ActionParams, Opaque, WireModel

Capabilities = (
    SystemCapabilities
    | LightCapabilities
    | SprinklerCapabilities
    | FrameCapabilities
    | CameraCapabilities
    | Opaque
)
DeviceState = SystemState | LightState | SprinklerState | FrameState | CameraState | Opaque


@dataclass(frozen=True)
class KindContract:
    """What one device kind sends and accepts."""

    kind: DeviceKind
    capabilities: type[WireModel]
    state: type[WireModel]
    actions: type[StrEnum]


CONTRACTS: Final[Mapping[str, KindContract]] = {
    contract.kind: contract
    for contract in (
        KindContract(DeviceKind.SYSTEM, SystemCapabilities, SystemState, SystemAction),
        KindContract(DeviceKind.LIGHT, LightCapabilities, LightState, LightAction),
        KindContract(
            DeviceKind.SPRINKLER_CONTROLLER, SprinklerCapabilities, SprinklerState, SprinklerAction
        ),
        KindContract(DeviceKind.PICTURE_FRAME, FrameCapabilities, FrameState, FrameAction),
        KindContract(DeviceKind.CAMERA, CameraCapabilities, CameraState, CameraAction),
    )
}


def decode_capabilities(kind: str, wire: object) -> Capabilities:
    """A device's capabilities as its kind's class; Opaque for a kind this version does not know.

    Raises ProtocolError when they do not have the shape the kind promises.
    """
    contract = CONTRACTS.get(kind)
    decoded = (contract.capabilities if contract else Opaque).from_wire(wire)
    assert isinstance(decoded, Capabilities)
    return decoded


def decode_state(kind: str, wire: object) -> DeviceState:
    """A device's state as its kind's class; Opaque for a kind this version does not know.

    Raises ProtocolError when it does not have the shape the kind promises.
    """
    contract = CONTRACTS.get(kind)
    decoded = (contract.state if contract else Opaque).from_wire(wire)
    assert isinstance(decoded, DeviceState)
    return decoded


__all__ = [
    "CONTRACTS",
    "ActionParams",
    "CameraAction",
    "CameraCapabilities",
    "CameraState",
    "Capabilities",
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
