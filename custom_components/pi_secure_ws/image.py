"""The picture the frame shows now, as an image entity (a thumbnail fetched over the channel)."""

from __future__ import annotations

from homeassistant.components.image import ImageEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .connection import AgentConnection, PiSecureWsConfigEntry
from .device import PiDevice
from .entity import EntityRule, PiSecureWsEntity, async_setup_device_entities, described_devices
from .protocol.client import BinaryPayload
from .protocol.devices import DeviceKind, FrameState
from .protocol.devices.frame import Thumbnail

PARALLEL_UPDATES = 0

PICTURE = EntityRule(kind=DeviceKind.PICTURE_FRAME)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_setup_device_entities(
        entry,
        async_add_entities,
        lambda connection, devices: (
            FramePicture(hass, connection, device)
            for device, _ in described_devices(connection, devices, (PICTURE,))
        ),
    )


class FramePicture(PiSecureWsEntity, ImageEntity):
    _attr_translation_key = "current_picture"
    _attr_content_type = "image/jpeg"

    def __init__(self, hass: HomeAssistant, connection: AgentConnection, device: PiDevice) -> None:
        ImageEntity.__init__(self, hass)
        PiSecureWsEntity.__init__(self, connection, device, "picture")
        self._shown = self._current()
        self._attr_image_last_updated = dt_util.utcnow()

    def _current(self) -> tuple[str | None, int | None]:
        state = self.state_as(FrameState)
        return (None, None) if state is None else (state.current, state.index)

    @callback
    def _handle_device_update(self) -> None:
        # A new picture on the frame is a new image: browsers fetch it again.
        if (current := self._current()) != self._shown:
            self._shown = current
            self._attr_image_last_updated = dt_util.utcnow()
        super()._handle_device_update()

    async def async_image(self) -> bytes | None:
        state = self.state_as(FrameState)
        if not self.available or state is None or state.current is None:
            return None
        result = await self.async_call(Thumbnail())
        return result.data if isinstance(result, BinaryPayload) else None
