"""The ``camera`` kind: snapshots and shared live streams, and a privacy mode."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Final, Self

from .wire import ActionParams, Fields, WireModel

DEVICE_ID: Final = "camera"  # the camera's fixed id


class CameraAction(StrEnum):
    SNAPSHOT = "snapshot"
    STREAM = "stream"
    SET_PRIVACY = "set_privacy"


class CameraBackend(StrEnum):
    PICAMERA2 = "picamera2"
    TEST_PATTERN = "test_pattern"


@dataclass(frozen=True, kw_only=True, slots=True)
class CameraCapabilities(WireModel):
    WHERE: ClassVar[str] = "camera capabilities"

    width: int  # native frame size in pixels
    height: int
    max_fps: float  # the highest stream rate the camera allows
    backend: str  # a CameraBackend; a newer agent may know others

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            width=fields.integer("width", 1),
            height=fields.integer("height", 1),
            max_fps=fields.number("max_fps", 0),
            backend=fields.string("backend"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "max_fps": self.max_fps,
            "backend": self.backend,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class CameraState(WireModel):
    WHERE: ClassVar[str] = "camera state"

    streaming: bool  # the capture pipeline runs
    subscribers: int  # streams running
    privacy: bool  # no snapshots, no streams
    error: str | None  # the camera's last failure; the agent keeps retrying
    fps: float  # the pipeline's rate, 0 when idle

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            streaming=fields.boolean("streaming"),
            subscribers=fields.integer("subscribers", 0),
            privacy=fields.boolean("privacy"),
            error=fields.optional_string("error"),
            fps=fields.number("fps", 0),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "streaming": self.streaming,
            "subscribers": self.subscribers,
            "privacy": self.privacy,
            "error": self.error,
            "fps": self.fps,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class Snapshot(ActionParams):
    """A JPEG, ``width``/``height`` 16-4096; give one of them to keep the aspect ratio."""

    action: ClassVar[str] = CameraAction.SNAPSHOT
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Stream(ActionParams):
    """Frames at ``fps`` (at least 0.1, at most ``max_fps``; None: ``max_fps``)."""

    action: ClassVar[str] = CameraAction.STREAM
    fps: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SetPrivacy(ActionParams):
    action: ClassVar[str] = CameraAction.SET_PRIVACY
    on: bool
