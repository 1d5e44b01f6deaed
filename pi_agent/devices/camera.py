"""The camera: JPEG snapshots, shared streams and a privacy switch.

Streams share one capture pipeline (:mod:`camera_stream`) that runs only while somebody watches.
Backend calls (libcamera, JPEG encoding) block, so they run on one worker thread, strictly one
after another, never on the event loop. A failed camera is retried with back-off in the background
until a test frame works, so its error clears without anybody asking.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TypeVar

import voluptuous as vol
from pi_secure_ws_protocol.const import Role
from pi_secure_ws_protocol.devices.camera import (
    DEVICE_ID,
    CameraAction,
    CameraCapabilities,
    CameraState,
)
from pi_secure_ws_protocol.devices.kinds import DeviceKind

from pi_agent.state_store import StateStore

from .base import (
    Action,
    BinaryResult,
    CallContext,
    Device,
    DeviceContext,
    DeviceError,
    Refused,
    StreamResult,
)
from .camera_backends import CameraBackend, Size, make_backend
from .camera_stream import StreamPipeline

_LOGGER = logging.getLogger(__name__)

CONFIG_KEY: Final = "camera"
BACKENDS: Final = ("auto", "picamera2", "test_pattern")
STATE_FILE_NAME: Final = "camera.json"
MAX_SIDE: Final = 4096
MIN_FPS: Final = 0.1
DEFAULT_RETRY_INITIAL: Final = 0.5
DEFAULT_RETRY_MAX: Final = 30.0

_T = TypeVar("_T")

_side = vol.All(int, vol.Range(min=16, max=MAX_SIDE))

CONFIG_SCHEMA: Final = vol.Schema(
    {
        vol.Optional("name", default="Camera"): vol.All(str, vol.Length(min=1, max=64)),
        vol.Optional("backend", default="auto"): vol.In(
            BACKENDS, msg=f"expected one of {', '.join(BACKENDS)}"
        ),
        vol.Optional("width", default=1280): _side,
        vol.Optional("height", default=720): _side,
        vol.Optional("max_fps", default=10): vol.All(
            vol.Any(int, float), vol.Coerce(float), vol.Range(min=MIN_FPS, max=60)
        ),
        vol.Optional("jpeg_quality", default=80): vol.All(int, vol.Range(min=10, max=95)),
        # Seconds the pipeline keeps running after its last stream ends, so a client that stops
        # and starts streams does not restart the camera each time.
        vol.Optional("stream_linger", default=2.0): vol.All(
            vol.Any(int, float), vol.Coerce(float), vol.Range(min=0, max=60)
        ),
    },
    extra=vol.PREVENT_EXTRA,
)

_SNAPSHOT_SCHEMA: Final = vol.Schema(
    {
        vol.Optional("width"): vol.All(vol.Coerce(int), vol.Range(min=16, max=MAX_SIDE)),
        vol.Optional("height"): vol.All(vol.Coerce(int), vol.Range(min=16, max=MAX_SIDE)),
    }
)
_PRIVACY_SCHEMA: Final = vol.Schema({vol.Required("on"): vol.Boolean()})


def used_pins(section: Any) -> list[tuple[str, int]]:
    """The camera has its own connector: no GPIO pins."""
    return []


def create(section: Mapping[str, Any], ctx: DeviceContext) -> list[Device]:
    backend = make_backend(section["backend"], section["width"], section["height"], mock=ctx.mock)
    return [
        CameraDevice(
            backend,
            name=section["name"],
            max_fps=section["max_fps"],
            jpeg_quality=section["jpeg_quality"],
            stream_linger=section["stream_linger"],
            state_file=ctx.state_dir / STATE_FILE_NAME,
        )
    ]


class CameraDevice(Device):
    """Snapshots and shared streams from one backend, with a privacy switch."""

    kind = DeviceKind.CAMERA

    def __init__(
        self,
        backend: CameraBackend,
        *,
        device_id: str = DEVICE_ID,
        name: str = "Camera",
        max_fps: float = 10.0,
        jpeg_quality: int = 80,
        state_file: Path | None = None,
        retry_initial: float = DEFAULT_RETRY_INITIAL,
        retry_max: float = DEFAULT_RETRY_MAX,
        stream_linger: float = 0.0,
    ) -> None:
        super().__init__(device_id, name)
        self._backend = backend
        self._max_fps = max_fps
        self._quality = jpeg_quality
        self._store = StateStore(state_file) if state_file is not None else None
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._privacy = bool(self._store.get("privacy", False)) if self._store else False
        self._error: str | None = None
        self._pipeline = StreamPipeline(
            capture=lambda: self._run(self._capture_blocking, None),
            release=lambda: self._run(self._release_backend),
            report=self._set_error,
            on_change=self.notify_state,
            on_end=self._pipeline_ended,
            linger=stream_linger,
            retry_initial=retry_initial,
            retry_max=retry_max,
        )
        self._recovery_task: asyncio.Task[None] | None = None
        # One worker: backend calls never overlap, even when a waiting coroutine is cancelled.
        self._executor: ThreadPoolExecutor | None = None
        self._backend_running = False  # touched only on the worker thread
        self._stopped = False
        stream_schema = vol.Schema(
            {
                vol.Optional("fps", default=max_fps): vol.All(
                    vol.Coerce(float), vol.Range(min=MIN_FPS)
                )
            }
        )
        self._actions = {
            action.name: action
            for action in (
                Action(
                    CameraAction.SNAPSHOT,
                    self._handle_snapshot,
                    _SNAPSHOT_SCHEMA,
                    Role.VIEWER,
                    costly=True,
                ),
                Action(
                    CameraAction.STREAM,
                    self._handle_stream,
                    stream_schema,
                    Role.VIEWER,
                    costly=True,
                ),
                Action(CameraAction.SET_PRIVACY, self._handle_set_privacy, _PRIVACY_SCHEMA),
            )
        }

    # Device interface

    def capabilities(self) -> dict[str, Any]:
        return CameraCapabilities(
            width=self._backend.width,
            height=self._backend.height,
            max_fps=self._max_fps,
            backend=self._backend.name,
        ).to_wire()

    def state(self) -> dict[str, Any]:
        return CameraState(
            streaming=self._pipeline.streaming,
            subscribers=len(self._pipeline.subscribers),
            privacy=self._privacy,
            error=self._error,
            fps=self._pipeline.fps(),
        ).to_wire()

    def actions(self) -> Mapping[str, Action]:
        return self._actions

    async def start(self) -> None:
        if self._privacy:
            return
        try:
            await self._run(self._backend.probe)
        except Exception as err:
            self._set_error(_reason(err))

    async def stop(self) -> None:
        self._stopped = True
        await self._pipeline.shut_down(wind_down=True)
        await self._cancel_recovery()
        try:
            await asyncio.wait_for(self._run(self._release_backend), 5.0)
        except Exception:
            _LOGGER.exception("releasing the camera failed")
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    # Introspection for tests and diagnostics

    def pending_frames(self) -> int:
        """Frames waiting in subscriber slots: never more than one per subscriber."""
        return self._pipeline.pending_frames()

    @property
    def frames_captured(self) -> int:
        return self._pipeline.frames_captured

    # Actions

    async def _handle_snapshot(self, params: dict[str, Any], call: CallContext) -> BinaryResult:
        if self._privacy:
            raise Refused("the camera is in privacy mode")
        size = self._snapshot_size(params.get("width"), params.get("height"))
        try:
            data = await self._run(self._capture_blocking, size)
        except Exception as err:
            self._set_error(_reason(err))
            raise DeviceError(f"camera: {_reason(err)}") from err
        finally:
            if not self._pipeline.running:
                # Nobody streams: do not leave the camera (and its LED) on after a snapshot.
                await self._run(self._release_backend)
        self._set_error(None)
        width, height = size or (self._backend.width, self._backend.height)
        return BinaryResult(data, "image/jpeg", {"width": width, "height": height})

    async def _handle_stream(self, params: dict[str, Any], call: CallContext) -> StreamResult:
        if self._privacy:
            raise Refused("the camera is in privacy mode")
        fps = float(params["fps"])
        if fps > self._max_fps:
            # Refused, not clamped: the client learns the limit instead of a silently lower rate.
            raise Refused(f"fps {fps:g} is above this camera's max_fps of {self._max_fps:g}")
        subscriber = self._pipeline.subscribe(fps)

        async def close() -> None:
            self._pipeline.unsubscribe(subscriber)

        return StreamResult(
            subscriber.frames(),
            close,
            "image/jpeg",
            {"fps": fps, "width": self._backend.width, "height": self._backend.height},
        )

    async def _handle_set_privacy(
        self, params: dict[str, Any], call: CallContext
    ) -> dict[str, Any]:
        on = bool(params["on"])
        if on != self._privacy:
            self._privacy = on
            self._save_privacy()
            _LOGGER.info("camera privacy %s by client %s", "on" if on else "off", call.client_id)
            if on:
                await self._shut_down_capture()
            elif self._error is not None:
                self._start_recovery()
            self.notify_state()
        return {"privacy": self._privacy}

    async def _shut_down_capture(self) -> None:
        await self._pipeline.shut_down()
        await self._cancel_recovery()
        await self._run(self._release_backend)

    # Errors and recovery

    def _set_error(self, reason: str | None) -> None:
        if reason == self._error:
            return
        if reason is None:
            _LOGGER.info("camera recovered")
        else:
            _LOGGER.warning("camera error: %s", reason)
        self._error = reason
        self.notify_state()
        if reason is not None and not self._pipeline.running:
            self._start_recovery()

    def _pipeline_ended(self) -> None:
        if self._error is not None:
            self._start_recovery()  # nobody watches now: keep retrying in the background

    async def _cancel_recovery(self) -> None:
        task, self._recovery_task = self._recovery_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _start_recovery(self) -> None:
        if self._stopped or self._privacy:
            return
        if self._recovery_task is None or self._recovery_task.done():
            self._recovery_task = asyncio.create_task(self._recover(), name="camera-recovery")

    async def _recover(self) -> None:
        """With nobody streaming, retry the backend with back-off until a test frame works."""
        delay = self._retry_initial
        while self._error is not None and not self._privacy:
            await asyncio.sleep(delay)
            if self._pipeline.running:
                return  # the stream pipeline retries on its own
            try:
                await self._run(self._self_test)
            except Exception as err:
                reason = _reason(err)
                if reason != self._error:
                    self._error = reason
                    self.notify_state()
                delay = min(delay * 2, self._retry_max)
                continue
            finally:
                if not self._pipeline.running:
                    await self._run(self._release_backend)
            self._error = None
            _LOGGER.info("camera recovered")
            self.notify_state()

    # Worker-thread side

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="camera")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _capture_blocking(self, size: Size | None) -> bytes:
        if not self._backend_running:
            self._backend.start()
            self._backend_running = True
        return self._backend.capture_jpeg(size, self._quality)

    def _self_test(self) -> None:
        self._backend.probe()
        self._capture_blocking((64, 64))

    def _release_backend(self) -> None:
        if self._backend_running:
            self._backend_running = False
            self._backend.stop()

    # Helpers

    def _snapshot_size(self, width: int | None, height: int | None) -> Size | None:
        native_w, native_h = self._backend.width, self._backend.height
        if width is None and height is None:
            return None
        if width is None:
            assert height is not None
            width = max(1, round(height * native_w / native_h))
        if height is None:
            height = max(1, round(width * native_h / native_w))
        return (width, height)

    def _save_privacy(self) -> None:
        if self._store is not None:
            self._store.set("privacy", self._privacy)
            # A privacy switch must hold after a power cut: write now, not in a second.
            self._store.flush()


def _reason(err: BaseException) -> str:
    return str(err) or type(err).__name__
