"""The registry of device kinds: each kind's classes, and decoding a device by its kind."""

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
from .wire import Opaque, WireModel

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
