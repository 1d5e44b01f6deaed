"""The picture frame's album: every picture, or one sub-folder of the pictures folder."""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.components.select import SelectEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .connection import AgentConnection, PiSecureWsConfigEntry
from .device import PiDevice
from .entity import EntityRule, PiSecureWsEntity, async_setup_device_entities, described_devices
from .protocol.devices import DeviceKind, FrameCapabilities, FrameState
from .protocol.devices.frame import SetAlbum

PARALLEL_UPDATES = 0

# The option for "no album": every picture in the folder (translated in en.json).
ALL_PICTURES = "all_pictures"

ALBUM = EntityRule(kind=DeviceKind.PICTURE_FRAME)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_setup_device_entities(entry, async_add_entities, _entities)


def _entities(connection: AgentConnection, devices: list[PiDevice]) -> Iterable[FrameAlbum]:
    return (
        FrameAlbum(connection, device)
        for device, _ in described_devices(connection, devices, (ALBUM,))
    )


class FrameAlbum(PiSecureWsEntity, SelectEntity):
    """Albums are the sub-folders the agent reported when the session started."""

    _attr_translation_key = "album"
    _attr_entity_category = EntityCategory.CONFIG

    def __init__(self, connection: AgentConnection, device: PiDevice) -> None:
        super().__init__(connection, device, "album")
        capabilities = device.capabilities
        assert isinstance(capabilities, FrameCapabilities)  # described_devices checked the kind
        albums = capabilities.albums
        self._attr_options = [ALL_PICTURES, *(a for a in albums if a != ALL_PICTURES)]

    @property
    def current_option(self) -> str | None:
        state = self.state_as(FrameState)
        if state is None or state.album is None:
            return ALL_PICTURES
        return state.album if state.album in self._attr_options else None

    async def async_select_option(self, option: str) -> None:
        await self.async_call(SetAlbum(album=None if option == ALL_PICTURES else option))
