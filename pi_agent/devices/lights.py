"""GPIO lights: on/off relays and PWM-dimmed lights, with fades, blink and pulse effects.

Fades and effects run as asyncio tasks on the agent's loop in small steps (no gpiozero background
threads), so every state push happens on the loop and a new command simply cancels the running
task. ``state()`` reports the target of a fade at once and the peak level of a running effect.

The last steady state of every light is kept in ``STATE_DIR/lights.json`` (:mod:`saved_light`), so
a light configured with ``startup = "restore"`` comes back as it was before a restart. A running
effect is remembered as "on" at its peak level. What the config and each action accept is checked
in :mod:`light_params` before a pin moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Mapping
from typing import Any, Final

from pi_secure_ws_protocol.devices.kinds import DeviceKind
from pi_secure_ws_protocol.devices.light import (
    MAX_BRIGHTNESS,
    LightAction,
    LightCapabilities,
    LightEffect,
    LightState,
)

from pi_agent.devices.base import (
    Action,
    ActionResult,
    CallContext,
    Device,
    DeviceContext,
    DeviceError,
    Refused,
)
from pi_agent.devices.gpio import build_output
from pi_agent.pins import hold_inactive
from pi_agent.state_store import StateStore

from . import light_params
from .light_params import (
    BLINK_SCHEMA,
    DEFAULT_PWM_FREQUENCY,
    PULSE_SCHEMA,
    TRANSITION_SCHEMA,
    TURN_ON_SCHEMA,
)
from .saved_light import SavedLight

_LOGGER = logging.getLogger(__name__)

CONFIG_KEY: Final = "light"
# The [[light]] tables' schema lives with the actions' parameters (light_params).
CONFIG_SCHEMA: Final = light_params.CONFIG_SCHEMA
STATE_FILE_NAME: Final = "lights.json"
# Fade resolution: 50 updates a second looks smooth and costs nothing.
FADE_STEP: Final = 0.02


def used_pins(section: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(f"light[{index}].pin", light["pin"]) for index, light in enumerate(section)]


def create(section: list[dict[str, Any]], ctx: DeviceContext) -> list[Device]:
    """Build one ``Light`` per ``[[light]]`` table; each starts as its ``startup`` option says."""
    section = CONFIG_SCHEMA(section)  # idempotent; fills the defaults when given a raw section
    # One store for all lights; a corrupt file is set aside (and logged) and the lights start
    # from their configured defaults.
    store = StateStore(ctx.state_dir / STATE_FILE_NAME)
    lights: list[Device] = []
    try:
        for index, config in enumerate(section):
            saved = SavedLight.load(store, config["id"])
            lights.append(Light(config, ctx.pin_factory, store, saved, index))
    except BaseException:
        for light in lights:
            assert isinstance(light, Light)
            light.close_output()
        raise
    return lights


class Light(Device):
    """One light on one GPIO pin: a relay or LED (on/off), or a PWM-dimmed light."""

    kind = DeviceKind.LIGHT
    stop_rank = 10

    def __init__(
        self,
        config: Mapping[str, Any],
        pin_factory: Any,
        store: StateStore,
        saved: SavedLight | None,
        index: int,
    ) -> None:
        super().__init__(config["id"], config["name"])
        self.pin: int = config["pin"]
        self.dimmable: bool = config["dimmable"]
        self._store = store
        self._on = False
        self._brightness = MAX_BRIGHTNESS  # the level "on" means; kept while off
        self._effect: LightEffect | None = None
        self._level = 0.0  # what the pin drives now, 0..1
        self._task: asyncio.Task[None] | None = None
        startup = config["startup"]
        self._startup: str = startup
        if startup == "on":
            self._on = True
        elif startup == "restore" and saved is not None:
            self._on = saved.on
            self._brightness = saved.brightness if self.dimmable else MAX_BRIGHTNESS
        self._level = self._target_level()
        self._output = build_output(
            pin_factory,
            self.pin,
            key=f"light[{index}].pin",
            active_high=config["active_high"],
            initial_level=self._level,
            pwm_frequency=config.get("pwm_frequency", DEFAULT_PWM_FREQUENCY)
            if self.dimmable
            else None,
        )
        self._actions = {
            action.name: action
            for action in (
                Action(LightAction.TURN_ON, self._turn_on, TURN_ON_SCHEMA),
                Action(LightAction.TURN_OFF, self._turn_off, TRANSITION_SCHEMA),
                Action(LightAction.TOGGLE, self._toggle, TRANSITION_SCHEMA),
                Action(LightAction.BLINK, self._blink, BLINK_SCHEMA),
                Action(LightAction.PULSE, self._pulse, PULSE_SCHEMA),
            )
        }

    # -- Device interface

    def capabilities(self) -> dict[str, Any]:
        effects = (LightEffect.BLINK, LightEffect.PULSE) if self.dimmable else (LightEffect.BLINK,)
        return LightCapabilities(
            dimmable=self.dimmable, supports_transition=self.dimmable, effects=effects
        ).to_wire()

    def state(self) -> dict[str, Any]:
        # Dimmable lights only report a brightness: 0 when off, the peak during an effect.
        brightness = (self._brightness if self._on else 0) if self.dimmable else None
        return LightState(on=self._on, effect=self._effect, brightness=brightness).to_wire()

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    async def stop(self) -> None:
        """Stop any fade or effect and let go of the pin; the saved state stays for a restart.

        A light that starts "off" is off while the agent is not running: its pin is held as an
        output at the inactive level (``pi-agent safe-off`` does the same after a crash). Others
        are released as before, so the next start restores them without a blink to "off".
        """
        task = self._cancel_task()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._startup == "off":
            try:
                hold_inactive(self._output)
            except Exception:
                _LOGGER.exception("light %s: switching GPIO%d off failed", self.id, self.pin)
        self._store.flush()
        self.close_output()

    def close_output(self) -> None:
        try:
            self._output.close()
        except Exception:
            _LOGGER.exception("light %s: closing GPIO%d failed", self.id, self.pin)

    # -- actions

    async def _turn_on(self, params: dict[str, Any], _call: CallContext) -> ActionResult:
        brightness = params.get("brightness")
        transition = params.get("transition", 0.0)
        self._refuse_unless_dimmable(brightness=brightness, transition=transition)
        self._cancel_task()
        if brightness == 0:
            return await self._switch(on=False, transition=transition)
        return await self._switch(on=True, transition=transition, brightness=brightness)

    async def _turn_off(self, params: dict[str, Any], _call: CallContext) -> ActionResult:
        transition = params.get("transition", 0.0)
        self._refuse_unless_dimmable(transition=transition)
        self._cancel_task()
        return await self._switch(on=False, transition=transition)

    async def _toggle(self, params: dict[str, Any], _call: CallContext) -> ActionResult:
        transition = params.get("transition", 0.0)
        self._refuse_unless_dimmable(transition=transition)
        self._cancel_task()
        return await self._switch(on=not self._on, transition=transition)

    async def _blink(self, params: dict[str, Any], _call: CallContext) -> ActionResult:
        brightness = params.get("brightness")
        self._refuse_unless_dimmable(brightness=brightness)
        self._cancel_task()
        peak = self._level_of(brightness if brightness is not None else self._brightness)
        self._start_effect(
            LightEffect.BLINK,
            brightness,
            self._run_blink(peak, params["on_time"], params["off_time"], params["count"]),
        )
        return self.state()

    async def _pulse(self, params: dict[str, Any], _call: CallContext) -> ActionResult:
        if not self.dimmable:
            raise Refused(f"light {self.id!r} is not dimmable: it cannot pulse")
        brightness = params.get("brightness")
        self._cancel_task()
        peak = self._level_of(brightness if brightness is not None else self._brightness)
        self._start_effect(
            LightEffect.PULSE,
            brightness,
            self._run_pulse(peak, params["fade_in"], params["fade_out"], params["count"]),
        )
        return self.state()

    # -- helpers

    def _refuse_unless_dimmable(
        self, *, brightness: int | None = None, transition: float = 0.0
    ) -> None:
        if self.dimmable:
            return
        if brightness is not None:
            raise Refused(f"light {self.id!r} is not dimmable: brightness is not supported")
        if transition > 0:
            raise Refused(f"light {self.id!r} is not dimmable: it cannot fade (transition)")

    async def _switch(
        self, *, on: bool, transition: float, brightness: int | None = None
    ) -> ActionResult:
        new_brightness = brightness if brightness is not None else self._brightness
        target = self._level_of(new_brightness) if on else 0.0
        if transition > 0 and self.dimmable:
            self._start_task(self._run_ramp(self._level, target, transition), "fade")
        else:
            self._write(target)  # a DeviceError here leaves the state as it was
        self._on = on
        self._brightness = new_brightness
        self._effect = None
        self._save()
        self.notify_state()
        return self.state()

    def _start_effect(
        self, effect: LightEffect, brightness: int | None, runner: Coroutine[Any, Any, None]
    ) -> None:
        self._on = True
        self._effect = effect
        if brightness is not None:
            self._brightness = brightness
        self._save()
        self._start_task(runner, effect)
        self.notify_state()

    def _start_task(self, runner: Coroutine[Any, Any, None], what: str) -> None:
        task = asyncio.get_running_loop().create_task(runner, name=f"light {self.id} {what}")
        task.add_done_callback(lambda done: self._log_task_failure(done, what))
        self._task = task

    def _log_task_failure(self, task: asyncio.Task[None], what: str) -> None:
        """A failed fade or effect ends with a log line, not a lost exception."""
        if task.cancelled():
            return
        err = task.exception()
        if isinstance(err, DeviceError):
            _LOGGER.error("light %s: %s stopped: %s", self.id, what, err)
        elif err is not None:
            _LOGGER.error("light %s: %s failed", self.id, what, exc_info=err)

    def _end_effect(self) -> None:
        """A counted effect finished: the light ends off, as gpiozero's own blink does."""
        self._on = False
        self._effect = None
        self._save()
        self._write(0.0)
        self.notify_state()

    async def _run_blink(
        self, peak: float, on_time: float, off_time: float, count: int | None
    ) -> None:
        done = 0
        while count is None or done < count:
            self._write(peak)
            await asyncio.sleep(on_time)
            self._write(0.0)
            await asyncio.sleep(off_time)
            done += 1
        self._end_effect()

    async def _run_pulse(
        self, peak: float, fade_in: float, fade_out: float, count: int | None
    ) -> None:
        done = 0
        while count is None or done < count:
            await self._run_ramp(0.0, peak, fade_in)
            await self._run_ramp(peak, 0.0, fade_out)
            done += 1
        self._end_effect()

    async def _run_ramp(self, start: float, end: float, duration: float) -> None:
        started = time.monotonic()
        while True:
            progress = min(1.0, (time.monotonic() - started) / duration)
            self._write(start + (end - start) * progress)
            if progress >= 1.0:
                return
            await asyncio.sleep(FADE_STEP)

    def _cancel_task(self) -> asyncio.Task[None] | None:
        """Cancel the running fade or effect at once.

        Synchronous on purpose: the task is parked at an ``await`` and never writes the pin again,
        and two commands arriving together cannot both keep a task running.
        """
        task, self._task = self._task, None
        if task is None or task.done():
            return None
        task.cancel()
        return task

    def _target_level(self) -> float:
        return self._level_of(self._brightness) if self._on else 0.0

    def _level_of(self, brightness: int) -> float:
        return brightness / MAX_BRIGHTNESS if self.dimmable else 1.0

    def _write(self, level: float) -> None:
        try:
            if self.dimmable:
                self._output.value = level
            elif level > 0:
                self._output.on()
            else:
                self._output.off()
        except Exception as err:
            raise DeviceError(f"light {self.id!r}: cannot drive GPIO{self.pin}: {err}") from err
        self._level = level

    def _save(self) -> None:
        SavedLight(on=self._on, brightness=self._brightness).save(self._store, self.id)
