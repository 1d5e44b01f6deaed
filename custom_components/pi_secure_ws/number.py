"""Numbers: each zone's run time (kept by Home Assistant) and the picture frame's settings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
    RestoreNumber,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .connection import AgentConnection, PiSecureWsConfigEntry
from .device import PiDevice, Zone
from .entity import (
    EntityRule,
    PiSecureWsEntity,
    always,
    async_setup_device_entities,
    described_devices,
)
from .protocol.devices import ActionParams, DeviceKind, FrameCapabilities, FrameState
from .protocol.devices.frame import SetBrightness, SetInterval

PARALLEL_UPDATES = 0

MAX_ZONE_SECONDS = 4 * 3600


ZONE_RUN_TIMES = EntityRule(kind=DeviceKind.SPRINKLER_CONTROLLER)


@dataclass(frozen=True, kw_only=True)
class FrameNumberDescription(NumberEntityDescription, EntityRule):
    """A frame setting: read from the typed state, written with one action."""

    kind: str = DeviceKind.PICTURE_FRAME
    value_fn: Callable[[FrameState], float]
    # The action's parameters that set the agent's value (in the agent's own scale).
    set_fn: Callable[[int], ActionParams]
    exists_fn: Callable[[FrameCapabilities], bool] = always
    # The agent's scale per unit shown here (brightness: 0-255 on the agent, percent here).
    scale: float = 1.0


FRAME_NUMBERS: tuple[FrameNumberDescription, ...] = (
    FrameNumberDescription(
        key="interval",
        translation_key="frame_interval",
        value_fn=lambda state: state.interval,
        set_fn=lambda seconds: SetInterval(seconds=seconds),
        device_class=NumberDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        native_min_value=1,
        native_max_value=86400,
        native_step=1,
        mode=NumberMode.BOX,
        entity_category=EntityCategory.CONFIG,
    ),
    FrameNumberDescription(
        key="brightness",
        translation_key="frame_brightness",
        value_fn=lambda state: state.brightness,
        set_fn=lambda brightness: SetBrightness(brightness=brightness),
        native_unit_of_measurement="%",
        native_min_value=0,
        native_max_value=100,
        native_step=1,
        mode=NumberMode.SLIDER,
        scale=255 / 100,
        exists_fn=lambda capabilities: capabilities.backlight,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiSecureWsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_setup_device_entities(entry, async_add_entities, _entities)


def _entities(connection: AgentConnection, devices: list[PiDevice]) -> Iterable[PiSecureWsEntity]:
    entities: list[PiSecureWsEntity] = [
        ZoneRunTime(connection, device, zone)
        for device, _ in described_devices(connection, devices, (ZONE_RUN_TIMES,))
        for zone in device.zones.values()
    ]
    entities.extend(
        FrameNumber(connection, device, description)
        for device, description in described_devices(connection, devices, FRAME_NUMBERS)
    )
    return entities


class ZoneRunTime(PiSecureWsEntity, RestoreNumber):
    """How long opening the zone's valve runs it.

    The agent knows only its configured default; a different time chosen here is kept by Home
    Assistant (restored after a restart) and sent with every run.
    """

    _attr_translation_key = "zone_run_time"
    _attr_device_class = NumberDeviceClass.DURATION
    _attr_native_unit_of_measurement = UnitOfTime.SECONDS
    _attr_native_min_value = 1
    _attr_native_step = 1
    _attr_mode = NumberMode.BOX
    _attr_entity_category = EntityCategory.CONFIG

    def __init__(self, connection: AgentConnection, device: PiDevice, zone: Zone) -> None:
        super().__init__(connection, device, f"{zone.key}_run_time")
        self.zone = zone
        self.zone_id = zone.id
        self._attr_translation_placeholders = {"zone": zone.name}
        self._attr_native_max_value = float(zone.max_seconds or MAX_ZONE_SECONDS)
        # Whole seconds, so the state reads "300 s", not "300.0 s".
        self._attr_native_value = round(min(zone.default_seconds, self._attr_native_max_value))

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        last = await self.async_get_last_number_data()
        restored = last.native_value if last is not None else None
        if restored is not None and 1 <= restored <= self._attr_native_max_value:
            self._attr_native_value = round(restored)
        self._publish()

    def _publish(self) -> None:
        """The zone's valve runs it this long from now on."""
        assert self._attr_native_value is not None
        self.zone.run_seconds = round(self._attr_native_value)

    async def async_set_native_value(self, value: float) -> None:
        self._attr_native_value = round(value)
        self._publish()
        self.async_write_ha_state()


class FrameNumber(PiSecureWsEntity, NumberEntity):
    entity_description: FrameNumberDescription

    def __init__(
        self,
        connection: AgentConnection,
        device: PiDevice,
        description: FrameNumberDescription,
    ) -> None:
        super().__init__(connection, device, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> float | None:
        state = self.state_as(FrameState)
        if state is None:
            return None
        # Whole steps: shown as "45 s", not "45.0 s".
        return round(self.entity_description.value_fn(state) / self.entity_description.scale)

    async def async_set_native_value(self, value: float) -> None:
        description = self.entity_description
        await self.async_call(description.set_fn(round(value * description.scale)))
