"""The Pi camera: snapshots on request and a live MJPEG view of frames pushed over the channel.

The agent never opens another port: frames of its ``stream`` action arrive over the session and
feed Home Assistant's still-stream helper, as the ESPHome camera does. On/off is the privacy
switch.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from homeassistant.components import camera
from homeassistant.components.camera import Camera, CameraEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .connection import AgentConnection, PiSecureWsConfigEntry
from .const import CONF_CAMERA_FPS, DEFAULT_CAMERA_FPS, LOGGER
from .device import PiDevice
from .entity import EntityRule, PiSecureWsEntity, async_setup_device_entities, described_devices
from .protocol.client import BinaryPayload
from .protocol.devices import CameraCapabilities, CameraState, DeviceKind
from .protocol.devices.camera import SetPrivacy, Snapshot, Stream

PARALLEL_UPDATES = 0

# The sides the agent's snapshot accepts. Home Assistant passes on what the browser asked for,
# which includes 0 (a dialog closing) and anything a URL can hold.
MIN_SNAPSHOT_SIDE = 16
MAX_SNAPSHOT_SIDE = 4096

CAMERA = EntityRule(kind=DeviceKind.CAMERA)


def snapshot_side(value: int | None) -> int | None:
    """A side the agent accepts: unset or not positive leaves it to the aspect ratio."""
    if value is None or value <= 0:
        return None
    return max(MIN_SNAPSHOT_SIDE, min(value, MAX_SNAPSHOT_SIDE))


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_setup_device_entities(entry, async_add_entities, _entities)


def _entities(connection: AgentConnection, devices: list[PiDevice]) -> Iterable[PiCamera]:
    return (
        PiCamera(connection, device)
        for device, _ in described_devices(connection, devices, (CAMERA,))
    )


class PiCamera(PiSecureWsEntity, Camera):
    _attr_translation_key = "camera"
    _attr_supported_features = CameraEntityFeature.ON_OFF

    def __init__(self, connection: AgentConnection, device: PiDevice) -> None:
        Camera.__init__(self)
        PiSecureWsEntity.__init__(self, connection, device, "camera")
        self._attr_name = device.name
        capabilities = device.capabilities
        assert isinstance(capabilities, CameraCapabilities)  # described_devices checked the kind
        self._max_fps = float(capabilities.max_fps or DEFAULT_CAMERA_FPS)

    @property
    def is_on(self) -> bool:
        state = self.state_as(CameraState)
        return state is None or not state.privacy

    @property
    def is_streaming(self) -> bool:
        state = self.state_as(CameraState)
        return state is not None and state.streaming

    @property
    def frame_interval(self) -> float:
        return 1 / self._fps

    @property
    def _fps(self) -> float:
        wanted = float(self.connection.entry.options.get(CONF_CAMERA_FPS, DEFAULT_CAMERA_FPS))
        return max(0.1, min(wanted, self._max_fps))

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        if not self.available or not self.is_on:
            return None
        try:
            result = await self.async_call(
                Snapshot(width=snapshot_side(width), height=snapshot_side(height))
            )
        except HomeAssistantError as err:
            # Home Assistant answers the browser with a bare 500: say here what happened.
            LOGGER.warning("%s: no snapshot: %s", self.connection.entry.title, err)
            raise
        return result.data if isinstance(result, BinaryPayload) else None

    async def handle_async_mjpeg_stream(self, request: web.Request) -> web.StreamResponse | None:
        if not self.available or not self.is_on:
            return None
        try:
            wanted = Stream(fps=self._fps)
            stream = await self.connection.async_stream(
                self.device_id, wanted.action, wanted.to_wire()
            )
        except HomeAssistantError as err:
            # The view is a plain HTTP response: no error dialog shows this, the log does.
            LOGGER.debug("%s: no live view: %s", self.connection.entry.title, err)
            return None

        async def next_frame() -> bytes | None:
            # The helper ends the HTTP response when this returns None: the stream ended.
            return await anext(stream, None)

        try:
            return await camera.async_get_still_stream(
                request, next_frame, camera.DEFAULT_CONTENT_TYPE, 0.0
            )
        finally:
            await stream.close()

    async def async_turn_on(self) -> None:
        await self.async_call(SetPrivacy(on=False))

    async def async_turn_off(self) -> None:
        await self.async_call(SetPrivacy(on=True))
