"""The ``picture_frame`` kind: a slideshow of the pictures in a folder on the Pi's screen.

Picture names are paths relative to the pictures folder, like ``holidays/beach.jpg``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Final, Self

from .wire import ActionParams, Fields, WireModel

DEVICE_ID: Final = "frame"  # the frame's fixed id
MAX_BRIGHTNESS: Final = 255


class FrameAction(StrEnum):
    NEXT = "next"
    PREVIOUS = "previous"
    PAUSE = "pause"
    RESUME = "resume"
    SHOW = "show"
    SET_INTERVAL = "set_interval"
    SET_SHUFFLE = "set_shuffle"
    SET_ALBUM = "set_album"
    SET_DISPLAY = "set_display"
    SET_BRIGHTNESS = "set_brightness"
    PUT_PICTURE = "put_picture"
    DELETE_PICTURE = "delete_picture"
    THUMBNAIL = "thumbnail"


class DisplayMethod(StrEnum):
    """How the screen is switched off; ``unsupported``: the picture is only blanked."""

    DRM = "drm"
    WLOPM = "wlopm"
    WLR_RANDR = "wlr-randr"
    BACKLIGHT = "backlight"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, kw_only=True, slots=True)
class FrameCapabilities(WireModel):
    WHERE: ClassVar[str] = "picture_frame capabilities"

    display_power: bool  # the screen can really be switched off
    display_method: str  # a DisplayMethod; a newer agent may know others
    backlight: bool  # brightness drives a backlight (otherwise it is applied in software)
    albums: tuple[str, ...]  # sub-folders of the pictures folder
    max_upload_bytes: int
    thumbnail_size: int

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            display_power=fields.boolean("display_power"),
            display_method=fields.string("display_method"),
            backlight=fields.boolean("backlight"),
            albums=fields.strings("albums"),
            max_upload_bytes=fields.integer("max_upload_bytes", 0),
            thumbnail_size=fields.integer("thumbnail_size", 1),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "display_power": self.display_power,
            "display_method": self.display_method,
            "backlight": self.backlight,
            "albums": list(self.albums),
            "max_upload_bytes": self.max_upload_bytes,
            "thumbnail_size": self.thumbnail_size,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class FrameState(WireModel):
    WHERE: ClassVar[str] = "picture_frame state"

    current: str | None  # the picture on screen
    index: int | None  # its position in the slideshow order
    count: int  # pictures in the slideshow
    paused: bool
    interval: float  # seconds per picture
    shuffle: bool
    display_on: bool
    display_method: str
    brightness: int  # 0-255
    album: str | None  # the album shown; None: every picture
    error: str | None  # the renderer's last error

    @classmethod
    def read(cls, fields: Fields) -> Self:
        return cls(
            current=fields.optional_string("current"),
            index=fields.optional_integer("index", 0),
            count=fields.integer("count", 0),
            paused=fields.boolean("paused"),
            interval=fields.number("interval", 0),
            shuffle=fields.boolean("shuffle"),
            display_on=fields.boolean("display_on"),
            display_method=fields.string("display_method"),
            brightness=fields.integer("brightness", 0, MAX_BRIGHTNESS),
            album=fields.optional_string("album"),
            error=fields.optional_string("error"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "index": self.index,
            "count": self.count,
            "paused": self.paused,
            "interval": self.interval,
            "shuffle": self.shuffle,
            "display_on": self.display_on,
            "display_method": self.display_method,
            "brightness": self.brightness,
            "album": self.album,
            "error": self.error,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ShowPicture(ActionParams):
    action: ClassVar[str] = FrameAction.SHOW
    name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class SetInterval(ActionParams):
    """Seconds per picture, 1-86400."""

    action: ClassVar[str] = FrameAction.SET_INTERVAL
    seconds: float


@dataclass(frozen=True, kw_only=True, slots=True)
class SetShuffle(ActionParams):
    action: ClassVar[str] = FrameAction.SET_SHUFFLE
    shuffle: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class SetAlbum(ActionParams):
    """Show one album (a sub-folder), or every picture with ``album=None``."""

    action: ClassVar[str] = FrameAction.SET_ALBUM
    album: str | None

    def to_wire(self) -> dict[str, Any]:
        return {"album": self.album}  # null is a value here: every picture


@dataclass(frozen=True, kw_only=True, slots=True)
class SetDisplay(ActionParams):
    action: ClassVar[str] = FrameAction.SET_DISPLAY
    on: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class SetBrightness(ActionParams):
    action: ClassVar[str] = FrameAction.SET_BRIGHTNESS
    brightness: int  # 0-255


@dataclass(frozen=True, kw_only=True, slots=True)
class PutPicture(ActionParams):
    """The parameters of an upload; the picture's bytes travel as the binary frame's payload."""

    action: ClassVar[str] = FrameAction.PUT_PICTURE
    name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class DeletePicture(ActionParams):
    action: ClassVar[str] = FrameAction.DELETE_PICTURE
    name: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Thumbnail(ActionParams):
    """A JPEG of the current picture, ``size`` 16-2048 pixels (None: ``thumbnail_size``)."""

    action: ClassVar[str] = FrameAction.THUMBNAIL
    size: int | None = None
