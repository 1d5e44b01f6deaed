"""The picture frame: a slideshow of a folder's JPEG and PNG pictures on the Pi's screen.

This module is the device: its ``[frame]`` section, its actions, and its state. The parts it is
built from each do one job: :mod:`picture_library` (the folder: names, albums, files),
:mod:`picture_decode` (decoding within a budget, on worker threads), :mod:`slideshow` (the order,
and when to move on) and :mod:`frame_display` (drawing, on the renderer's own thread). The event
loop only decides what to show.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import voluptuous as vol
from pi_secure_ws_protocol.const import Role
from pi_secure_ws_protocol.devices.frame import (
    DEVICE_ID,
    MAX_BRIGHTNESS,
    DisplayMethod,
    FrameAction,
    FrameCapabilities,
    FrameState,
)
from pi_secure_ws_protocol.devices.kinds import DeviceKind
from PIL import Image

from pi_agent.state_store import StateStore

from .base import (
    Action,
    BinaryResult,
    CallContext,
    Device,
    DeviceContext,
    DeviceError,
    Handler,
    Refused,
)
from .display_power import probe_backlight, probe_display_power
from .frame_display import FrameRenderer
from .picture_decode import (
    MAX_DECODED_BYTES,
    MAX_DECODES,
    MAX_PICTURE_PIXELS,
    MIB,
    DecodeBudget,
    PictureDecoder,
)
from .picture_library import album_name, is_picture_file, list_albums, picture_name, write_picture
from .slideshow import FrameSettings, IntervalWait, Slideshow, wait_interval

_LOGGER = logging.getLogger(__name__)

CONFIG_KEY: Final = "frame"
STATE_FILE_NAME: Final = "frame.json"

_seconds = vol.All(vol.Any(int, float), vol.Coerce(float))

CONFIG_SCHEMA: Final = vol.Schema(
    {
        vol.Optional("name", default="Picture frame"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Optional("folder", default="pictures"): vol.All(str, vol.Length(min=1)),
        # Every picture is a state change Home Assistant records: 5 minutes is 288 a day.
        vol.Optional("interval", default=300.0): vol.All(_seconds, vol.Range(min=1, max=86400)),
        vol.Optional("shuffle", default=False): bool,
        vol.Optional("crossfade", default=1.0): vol.All(_seconds, vol.Range(min=0, max=10)),
        vol.Optional("max_upload_bytes", default=10 * MIB): vol.All(
            int, vol.Range(min=1024, max=256 * MIB)
        ),
        vol.Optional("width", default=800): vol.All(int, vol.Range(min=16, max=8192)),
        vol.Optional("height", default=480): vol.All(int, vol.Range(min=16, max=8192)),
        vol.Optional("thumbnail_size", default=320): vol.All(int, vol.Range(min=16, max=2048)),
        vol.Optional("max_picture_pixels", default=MAX_PICTURE_PIXELS): vol.All(
            int, vol.Range(min=100_000, max=100_000_000)
        ),
        vol.Optional("max_decoded_bytes", default=MAX_DECODED_BYTES): vol.All(
            int, vol.Range(min=MIB, max=1024 * MIB)
        ),
        vol.Optional("max_decodes", default=MAX_DECODES): vol.All(int, vol.Range(min=1, max=8)),
    },
    extra=vol.PREVENT_EXTRA,
)


def used_pins(section: Any) -> list[tuple[str, int]]:
    """The screen has its own connector: no GPIO pins."""
    return []


def create(section: Mapping[str, Any], ctx: DeviceContext) -> list[Device]:
    folder = Path(section["folder"])
    if not folder.is_absolute():
        folder = ctx.state_dir / folder
    return [
        PictureFrameDevice(
            folder,
            ctx.state_dir / STATE_FILE_NAME,
            name=section["name"],
            interval=section["interval"],
            shuffle=section["shuffle"],
            crossfade=section["crossfade"],
            max_upload_bytes=section["max_upload_bytes"],
            width=section["width"],
            height=section["height"],
            thumbnail_size=section["thumbnail_size"],
            budget=DecodeBudget(
                section["max_picture_pixels"],
                section["max_decoded_bytes"],
                section["max_decodes"],
                ctx.memory,
            ),
        )
    ]


_NO_PARAMS: Final = vol.Schema({})
_NAME_SCHEMA: Final = vol.Schema({vol.Required("name"): picture_name})
_INTERVAL_SCHEMA: Final = vol.Schema(
    {vol.Required("seconds"): vol.All(vol.Coerce(float), vol.Range(min=1, max=86400))}
)
_SHUFFLE_SCHEMA: Final = vol.Schema({vol.Required("shuffle"): vol.Boolean()})
_ALBUM_SCHEMA: Final = vol.Schema({vol.Required("album"): album_name})
_DISPLAY_SCHEMA: Final = vol.Schema({vol.Required("on"): vol.Boolean()})
_BRIGHTNESS_SCHEMA: Final = vol.Schema(
    {vol.Required("brightness"): vol.All(vol.Coerce(int), vol.Range(min=0, max=MAX_BRIGHTNESS))}
)
# The data arrives as the payload of a binary frame.
_PUT_SCHEMA: Final = vol.Schema({vol.Required("name"): picture_name, vol.Required("data"): bytes})
_THUMBNAIL_SCHEMA: Final = vol.Schema(
    {vol.Optional("size"): vol.All(vol.Coerce(int), vol.Range(min=16, max=2048))}
)


class PictureFrameDevice(Device):
    """Slideshow, uploads, thumbnails, screen power and brightness."""

    kind = DeviceKind.PICTURE_FRAME

    def __init__(
        self,
        folder: Path,
        state_file: Path,
        *,
        device_id: str = DEVICE_ID,
        name: str = "Picture frame",
        interval: float = 300.0,
        shuffle: bool = False,
        crossfade: float = 1.0,
        max_upload_bytes: int = 10 * MIB,
        width: int = 800,
        height: int = 480,
        thumbnail_size: int = 320,
        budget: DecodeBudget | None = None,
        root: Path = Path("/"),
        env: Mapping[str, str] | None = None,
        wait: IntervalWait = wait_interval,
    ) -> None:
        super().__init__(device_id, name)
        self._folder = folder
        self._store = StateStore(state_file)
        self._max_upload = max_upload_bytes
        self._thumbnail_size = thumbnail_size
        self._decoder = PictureDecoder(budget)
        self._renderer = FrameRenderer(width, height, crossfade)
        self._power = probe_display_power(root, env)
        self._backlight = probe_backlight(root)
        self._settings = FrameSettings.load(self._store, folder, interval, shuffle)
        self.slideshow = Slideshow(
            folder,
            self._settings,
            self._store,
            screen=self._renderer,
            decoder=self._decoder,
            notify=self.notify_state,
            wait=wait,
        )
        self._actions = self._build_actions()

    # Device interface

    def capabilities(self) -> dict[str, Any]:
        return FrameCapabilities(
            display_power=self._power.method != DisplayMethod.UNSUPPORTED,
            display_method=self._power.method,
            backlight=self._backlight is not None,
            albums=tuple(list_albums(self._folder)),
            max_upload_bytes=self._max_upload,
            thumbnail_size=self._thumbnail_size,
        ).to_wire()

    def state(self) -> dict[str, Any]:
        settings = self._settings
        return FrameState(
            current=settings.current,
            index=self.slideshow.index(),
            count=self.slideshow.count,
            paused=settings.paused,
            interval=settings.interval,
            shuffle=settings.shuffle,
            display_on=settings.display_on,
            display_method=self._power.method,
            brightness=settings.brightness,
            album=settings.album,
            error=self._renderer.error,
        ).to_wire()

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    async def start(self) -> None:
        await asyncio.to_thread(self._folder.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self._renderer.start)
        try:
            await self._apply_brightness(self._settings.brightness)
            if not self._settings.display_on:
                await self._apply_display(False)
        except DeviceError as err:
            _LOGGER.warning("picture frame: restoring the screen settings failed: %s", err)
        await self.slideshow.start()

    async def stop(self) -> None:
        await self.slideshow.stop()
        self._store.flush()
        await asyncio.to_thread(self._renderer.close)
        self._decoder.close()

    async def screenshot(self) -> Image.Image:
        """What the screen shows now (diagnostics and tests)."""
        return await asyncio.wrap_future(self._renderer.screenshot())

    # The screen

    async def _apply_display(self, on: bool) -> None:
        await self._power.set_power(on)
        # Also blank the picture itself: with no power control a black screen is the best we can
        # do, and with one it hides the picture while the panel powers down.
        self._renderer.set_blank(not on)

    async def _apply_brightness(self, brightness: int) -> None:
        if self._backlight is not None:
            await self._backlight.set_level(brightness)
            self._renderer.set_brightness(255)
        else:
            self._renderer.set_brightness(brightness)

    # Actions

    def _build_actions(self) -> dict[str, Action]:
        control: list[tuple[str, Handler, vol.Schema]] = [
            (FrameAction.NEXT, self._handle_next, _NO_PARAMS),
            (FrameAction.PREVIOUS, self._handle_previous, _NO_PARAMS),
            (FrameAction.PAUSE, self._handle_pause, _NO_PARAMS),
            (FrameAction.RESUME, self._handle_resume, _NO_PARAMS),
            (FrameAction.SHOW, self._handle_show, _NAME_SCHEMA),
            (FrameAction.SET_INTERVAL, self._handle_set_interval, _INTERVAL_SCHEMA),
            (FrameAction.SET_SHUFFLE, self._handle_set_shuffle, _SHUFFLE_SCHEMA),
            (FrameAction.SET_ALBUM, self._handle_set_album, _ALBUM_SCHEMA),
            (FrameAction.SET_DISPLAY, self._handle_set_display, _DISPLAY_SCHEMA),
            (FrameAction.SET_BRIGHTNESS, self._handle_set_brightness, _BRIGHTNESS_SCHEMA),
            (FrameAction.PUT_PICTURE, self._handle_put_picture, _PUT_SCHEMA),
            (FrameAction.DELETE_PICTURE, self._handle_delete_picture, _NAME_SCHEMA),
        ]
        actions = {name: Action(name, handler, schema) for name, handler, schema in control}
        put = FrameAction.PUT_PICTURE
        actions[put] = replace(actions[put], costly=True)
        actions[FrameAction.THUMBNAIL] = Action(
            FrameAction.THUMBNAIL,
            self._handle_thumbnail,
            _THUMBNAIL_SCHEMA,
            Role.VIEWER,
            costly=True,
        )
        return actions

    async def _handle_next(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        await self.slideshow.move(+1)
        return self.state()

    async def _handle_previous(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        await self.slideshow.move(-1)
        return self.state()

    async def _handle_pause(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        return self._change(paused=True)

    async def _handle_resume(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        return self._change(paused=False)

    def _change(self, **changes: Any) -> dict[str, Any]:
        for key, value in changes.items():
            setattr(self._settings, key, value)
        self._settings.save(self._store)
        self.slideshow.restart_timer()
        self.notify_state()
        return self.state()

    async def _handle_show(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        await self.slideshow.show(params["name"])
        return self.state()

    async def _handle_set_interval(
        self, params: dict[str, Any], call: CallContext
    ) -> dict[str, Any]:
        return self._change(interval=float(params["seconds"]))

    async def _handle_set_shuffle(
        self, params: dict[str, Any], call: CallContext
    ) -> dict[str, Any]:
        await self.slideshow.set_shuffle(bool(params["shuffle"]))
        return self._change()

    async def _handle_set_album(self, params: dict[str, Any], call: CallContext) -> dict[str, Any]:
        await self.slideshow.set_album(params["album"])
        return self._change()

    async def _handle_set_display(
        self, params: dict[str, Any], call: CallContext
    ) -> dict[str, Any]:
        on = bool(params["on"])
        await self._apply_display(on)
        self._change(display_on=on)
        return {"display_on": on, "display_method": self._power.method}

    async def _handle_set_brightness(
        self, params: dict[str, Any], call: CallContext
    ) -> dict[str, Any]:
        brightness = int(params["brightness"])
        await self._apply_brightness(brightness)
        self._change(brightness=brightness)
        method = "backlight" if self._backlight is not None else "software"
        return {"brightness": brightness, "method": method}

    async def _handle_put_picture(
        self, params: dict[str, Any], call: CallContext
    ) -> dict[str, Any]:
        name: str = params["name"]
        data: bytes = params["data"]
        if len(data) > self._max_upload:
            raise Refused(f"the picture is {len(data)} bytes; the limit is {self._max_upload}")
        try:
            width, height = await self._decoder.check_upload(data, name)
        except ValueError as err:
            raise Refused(f"{name!r} was not accepted: {err}") from None
        try:
            replaced = await asyncio.to_thread(write_picture, self._folder, name, data)
        except OSError as err:
            raise DeviceError(f"cannot save {name!r}: {err.strerror or err}") from err
        _LOGGER.info(
            "picture frame: %s %s (%d bytes) from client %s",
            "replaced" if replaced else "added",
            name,
            len(data),
            call.client_id,
        )
        await self.slideshow.picture_saved(name)
        return {"name": name, "bytes": len(data), "width": width, "height": height}

    async def _handle_delete_picture(
        self, params: dict[str, Any], call: CallContext
    ) -> dict[str, Any]:
        name: str = params["name"]
        if not is_picture_file(self._folder, name):
            raise Refused(f"there is no picture named {name!r}")
        try:
            await asyncio.to_thread((self._folder / name).unlink)
        except OSError as err:
            raise DeviceError(f"cannot delete {name!r}: {err.strerror or err}") from err
        _LOGGER.info("picture frame: deleted %s for client %s", name, call.client_id)
        await self.slideshow.library_changed()
        return {"deleted": name}

    async def _handle_thumbnail(self, params: dict[str, Any], call: CallContext) -> BinaryResult:
        size = int(params.get("size", self._thumbnail_size))
        name = self._settings.current
        if name is None:
            raise Refused("no picture is showing")
        picture = (name, self.slideshow.order.mtimes.get(name, 0))
        try:
            data, (width, height) = await self._decoder.thumbnail(
                self._folder / name, picture, size
            )
        except Exception as err:
            raise DeviceError(f"cannot read {name!r}: {err}") from err
        return BinaryResult(data, "image/jpeg", {"name": name, "width": width, "height": height})
