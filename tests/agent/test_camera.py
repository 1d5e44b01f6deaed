"""The camera device with the real test-pattern backend, called through its actions."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from pi_secure_ws_protocol.const import Role
from pi_secure_ws_testing.devices import CONTROL, VIEWER, call
from pi_secure_ws_testing.waiting import wait_until
from PIL import Image

from pi_agent.devices import camera
from pi_agent.devices.base import (
    BinaryResult,
    DeviceContext,
    DeviceError,
    Refused,
    StreamResult,
)
from pi_agent.devices.camera import CameraDevice
from pi_agent.devices.camera_backends import CameraBackendError, Size, TestPatternBackend


class CountingBackend(TestPatternBackend):
    """The test pattern, counting what the device asks of it."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__(width, height)
        self.captures = 0
        self.running = False

    def start(self) -> None:
        super().start()
        self.running = True

    def stop(self) -> None:
        super().stop()
        self.running = False

    def capture_jpeg(self, size: Size | None, quality: int) -> bytes:
        self.captures += 1
        return super().capture_jpeg(size, quality)


class FlakyBackend(CountingBackend):
    """Fails its first ``failures`` captures, like a camera cable that comes back."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def capture_jpeg(self, size: Size | None, quality: int) -> bytes:
        if self.failures > 0:
            self.failures -= 1
            raise CameraBackendError("camera timed out")
        return super().capture_jpeg(size, quality)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    image.load()
    return image


async def consume(frames: AsyncIterator[bytes], into: list[bytes], delay: float) -> None:
    async for frame in frames:
        into.append(frame)
        if delay:
            await asyncio.sleep(delay)


@pytest.fixture
async def device() -> AsyncIterator[CameraDevice]:
    dev = CameraDevice(CountingBackend(), max_fps=40, retry_initial=0.02, retry_max=0.05)
    await dev.start()
    yield dev
    await dev.stop()


def test_config_schema_defaults_and_unknown_keys() -> None:
    section = camera.CONFIG_SCHEMA({})
    assert section == {
        "name": "Camera",
        "backend": "auto",
        "width": 1280,
        "height": 720,
        "max_fps": 10.0,
        "jpeg_quality": 80,
        "stream_linger": 2.0,
    }
    with pytest.raises(vol.MultipleInvalid, match="extra keys not allowed"):
        camera.CONFIG_SCHEMA({"fps": 5})
    with pytest.raises(vol.MultipleInvalid, match="expected one of"):
        camera.CONFIG_SCHEMA({"backend": "webcam"})
    assert camera.used_pins(section) == []


async def test_create_with_mock_hardware_uses_the_test_pattern(tmp_path: Path) -> None:
    ctx = DeviceContext(pin_factory=None, state_dir=tmp_path, mock=True, config_dir=tmp_path)
    section = camera.CONFIG_SCHEMA({"backend": "test_pattern", "width": 320, "height": 180})
    (dev,) = camera.create(section, ctx)
    assert (dev.id, dev.kind) == ("camera", "camera")
    assert dev.capabilities() == {
        "width": 320,
        "height": 180,
        "max_fps": 10.0,
        "backend": "test_pattern",
    }


async def test_missing_picamera2_on_real_hardware_is_an_error_state(tmp_path: Path) -> None:
    ctx = DeviceContext(pin_factory=None, state_dir=tmp_path, mock=False, config_dir=tmp_path)
    (dev,) = camera.create(camera.CONFIG_SCHEMA({}), ctx)
    assert isinstance(dev, CameraDevice)
    await dev.start()
    try:
        assert dev.capabilities()["backend"] == "picamera2"
        assert "picamera2" in dev.state()["error"]
        with pytest.raises(DeviceError, match="picamera2"):
            await call(dev, "snapshot", who=VIEWER)
    finally:
        await dev.stop()


async def test_snapshot_is_a_jpeg_at_the_asked_size(device: CameraDevice) -> None:
    result = await call(device, "snapshot", who=VIEWER)
    assert isinstance(result, BinaryResult)
    assert result.content_type == "image/jpeg"
    assert decode(result.data).size == (320, 240)
    resized = await call(device, "snapshot", {"width": 160, "height": 100}, VIEWER)
    assert decode(resized.data).size == (160, 100)
    assert resized.meta == {"width": 160, "height": 100}
    by_width = await call(device, "snapshot", {"width": 64}, VIEWER)
    assert decode(by_width.data).size == (64, 48)  # aspect ratio kept
    with pytest.raises(vol.Invalid):
        device.actions()["snapshot"].schema({"width": 100000})


async def test_snapshot_leaves_the_camera_off(device: CameraDevice) -> None:
    backend = device._backend
    assert isinstance(backend, CountingBackend)
    await call(device, "snapshot", who=VIEWER)
    assert backend.captures == 1
    assert not backend.running


async def test_no_capture_without_subscribers(device: CameraDevice) -> None:
    backend = device._backend
    assert isinstance(backend, CountingBackend)
    await asyncio.sleep(0.1)
    assert backend.captures == 0
    stream = await call(device, "stream", {"fps": 20}, VIEWER)
    frames: list[bytes] = []
    task = asyncio.create_task(consume(stream.frames, frames, 0))
    await wait_until(lambda: len(frames) >= 2)
    assert device.state()["streaming"] is True
    assert device.state()["subscribers"] == 1
    await stream.close()
    await task
    await wait_until(lambda: not backend.running)
    captured = backend.captures
    await asyncio.sleep(0.15)
    assert backend.captures == captured
    assert device.state() == {
        "streaming": False,
        "subscribers": 0,
        "privacy": False,
        "error": None,
        "fps": 0.0,
    }


async def test_stream_rate_and_a_slow_subscriber(device: CameraDevice) -> None:
    fast_stream = await call(device, "stream", {"fps": 20}, VIEWER)
    slow_stream = await call(device, "stream", {"fps": 20}, VIEWER)
    assert isinstance(fast_stream, StreamResult)
    fast: list[bytes] = []
    slow: list[bytes] = []
    tasks = [
        asyncio.create_task(consume(fast_stream.frames, fast, 0)),
        asyncio.create_task(consume(slow_stream.frames, slow, 0.2)),
    ]
    most_pending = 0
    started = asyncio.get_running_loop().time()
    for _ in range(50):  # about one second, longer on a busy machine
        await asyncio.sleep(0.02)
        most_pending = max(most_pending, device.pending_frames())
    await fast_stream.close()
    await slow_stream.close()
    await asyncio.gather(*tasks)
    elapsed = asyncio.get_running_loop().time() - started
    assert device.state()["fps"] == 0.0
    # At 20 fps the fast one gets roughly all of them, the slow one about five a second. The cap
    # is checked against the time that really passed: a loaded machine stretches "one second".
    assert 10 <= len(fast) <= 20 * elapsed + 4
    assert 2 <= len(slow) <= 7
    assert len(slow) < len(fast) / 2
    assert most_pending <= 2  # one slot per subscriber, never a queue
    for frame in (fast[0], slow[-1]):
        assert decode(frame).size == (320, 240)


async def test_pipeline_runs_at_the_highest_rate_asked(device: CameraDevice) -> None:
    backend = device._backend
    assert isinstance(backend, CountingBackend)
    slow_rate = await call(device, "stream", {"fps": 5}, VIEWER)
    fast_rate = await call(device, "stream", {"fps": 20}, VIEWER)
    assert device.state()["fps"] == 20.0
    slow: list[bytes] = []
    fast: list[bytes] = []
    tasks = [
        asyncio.create_task(consume(slow_rate.frames, slow, 0)),
        asyncio.create_task(consume(fast_rate.frames, fast, 0)),
    ]
    await asyncio.sleep(1.0)
    await slow_rate.close()
    await fast_rate.close()
    await asyncio.gather(*tasks)
    assert 3 <= len(slow) <= 7  # paced to its own 5 fps
    assert len(fast) >= 10
    assert backend.captures <= 24  # one pipeline, not one per subscriber


async def test_stream_over_max_fps_is_refused(device: CameraDevice) -> None:
    with pytest.raises(Refused, match="max_fps of 40"):
        await call(device, "stream", {"fps": 41}, VIEWER)
    assert device.state()["subscribers"] == 0


async def test_privacy_stops_streams_and_refuses_capture(tmp_path: Path) -> None:
    backend = CountingBackend()
    state_file = tmp_path / "camera.json"
    dev = CameraDevice(backend, max_fps=20, state_file=state_file)
    await dev.start()
    stream = await call(dev, "stream", {"fps": 10}, VIEWER)
    frames: list[bytes] = []
    task = asyncio.create_task(consume(stream.frames, frames, 0))
    await wait_until(lambda: len(frames) >= 1)
    with pytest.raises(vol.Invalid):
        dev.actions()["set_privacy"].schema({})
    assert dev.actions()["set_privacy"].role is Role.CONTROL
    assert await call(dev, "set_privacy", {"on": True}, CONTROL) == {"privacy": True}
    await asyncio.wait_for(task, 1.0)  # the stream ended
    assert not backend.running
    captured = backend.captures
    with pytest.raises(Refused, match="privacy"):
        await call(dev, "snapshot", who=VIEWER)
    with pytest.raises(Refused, match="privacy"):
        await call(dev, "stream", {"fps": 5}, VIEWER)
    assert backend.captures == captured
    assert dev.state()["privacy"] is True
    await dev.stop()

    # Privacy survives a restart.
    assert json.loads(state_file.read_text()) == {"privacy": True}
    again = CameraDevice(CountingBackend(), max_fps=20, state_file=state_file)
    assert again.state()["privacy"] is True
    await call(again, "set_privacy", {"on": False}, CONTROL)
    assert decode((await call(again, "snapshot", who=VIEWER)).data).size == (320, 240)
    await again.stop()


async def test_a_failing_backend_shows_an_error_and_the_stream_recovers() -> None:
    backend = FlakyBackend(failures=3)
    dev = CameraDevice(backend, max_fps=20, retry_initial=0.02, retry_max=0.05)
    states: list[dict[str, Any]] = []
    dev.add_listener(lambda d: states.append(d.state()))
    await dev.start()
    stream = await call(dev, "stream", {"fps": 20}, VIEWER)
    frames: list[bytes] = []
    task = asyncio.create_task(consume(stream.frames, frames, 0))
    await wait_until(lambda: len(frames) >= 2)
    assert any(state["error"] == "camera timed out" for state in states)
    assert dev.state()["error"] is None
    await stream.close()
    await task
    await dev.stop()


async def test_a_failing_snapshot_recovers_without_a_client() -> None:
    backend = FlakyBackend(failures=2)
    dev = CameraDevice(backend, max_fps=20, retry_initial=0.02, retry_max=0.05)
    await dev.start()
    with pytest.raises(DeviceError, match="camera timed out"):
        await call(dev, "snapshot", who=VIEWER)
    assert dev.state()["error"] == "camera timed out"
    # The device retries on its own with back-off; the error clears when the camera works again.
    await wait_until(lambda: dev.state()["error"] is None)
    assert backend.failures == 0
    assert not backend.running
    assert decode((await call(dev, "snapshot", who=VIEWER)).data).size == (320, 240)
    await dev.stop()


async def test_an_error_left_by_a_stream_recovers_after_it_ends() -> None:
    backend = FlakyBackend(failures=10_000)
    dev = CameraDevice(backend, max_fps=20, retry_initial=0.02, retry_max=0.05)
    await dev.start()
    stream = await call(dev, "stream", {"fps": 20}, VIEWER)
    await wait_until(lambda: dev.state()["error"] == "camera timed out")
    await stream.close()
    assert dev.state()["streaming"] is False
    backend.failures = 0  # the camera comes back with nobody watching
    await wait_until(lambda: dev.state()["error"] is None)
    assert not backend.running
    await dev.stop()


class StartCountingBackend(CountingBackend):
    def __init__(self) -> None:
        super().__init__()
        self.starts = 0

    def start(self) -> None:
        super().start()
        self.starts += 1


async def test_a_lingering_pipeline_is_not_restarted_by_churn() -> None:
    backend = StartCountingBackend()
    dev = CameraDevice(backend, max_fps=10, stream_linger=0.5)
    await dev.start()
    starts_after_probe = backend.starts
    for _ in range(30):  # stop and start streams far faster than the pipeline's rate
        stream = await call(dev, "stream", {"fps": 10}, VIEWER)
        await asyncio.sleep(0.005)
        await stream.close()
    # One pipeline start for the whole churn, and captures at most at the pipeline's rate.
    await wait_until(lambda: backend.captures >= 1)
    assert backend.starts - starts_after_probe == 1
    assert dev.state()["streaming"] is False
    # After the linger the camera is released and nothing is captured any more.
    await wait_until(lambda: not backend.running)
    assert dev.state()["subscribers"] == 0
    captured = backend.captures
    await asyncio.sleep(0.2)
    assert backend.captures == captured
    # A stream after the linger starts a fresh pipeline and gets frames.
    stream = await call(dev, "stream", {"fps": 10}, VIEWER)
    frames: list[bytes] = []
    task = asyncio.create_task(consume(stream.frames, frames, 0))
    await wait_until(lambda: len(frames) >= 1)
    assert backend.starts - starts_after_probe == 2
    await stream.close()
    await task
    await dev.stop()
    assert not backend.running
