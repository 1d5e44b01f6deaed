"""Where camera frames come from: picamera2 on a Pi, a synthetic test pattern elsewhere.

Every method blocks (libcamera and JPEG encoding are slow), so the camera device calls them from a
worker thread, one call at a time.
"""

from __future__ import annotations

import importlib.util
import io
import time
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, Final

from pi_secure_ws_protocol.devices.camera import CameraBackend as BackendName
from PIL import Image, ImageDraw

Size = tuple[int, int]

# Colour bars of the classic test card, left to right.
_BAR_COLOURS: Final = (
    (192, 192, 192),
    (192, 192, 0),
    (0, 192, 192),
    (0, 192, 0),
    (192, 0, 192),
    (192, 0, 0),
    (0, 0, 192),
)


class CameraBackendError(Exception):
    """The camera could not start or deliver a frame; the message says why."""


class CameraBackend(ABC):
    """Start, capture JPEG frames, stop. Blocking calls, never two at once."""

    name: str

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height

    def probe(self) -> None:  # noqa: B027 - optional hook
        """Raise CameraBackendError when the camera is certainly unusable, without opening it."""

    @abstractmethod
    def start(self) -> None:
        """Open the camera; capture_jpeg may be called afterwards."""

    @abstractmethod
    def stop(self) -> None:
        """Release the camera. Must not raise, and is harmless when not started."""

    @abstractmethod
    def capture_jpeg(self, size: Size | None, quality: int) -> bytes:
        """One frame as JPEG, resized to ``size`` when given."""


def encode_jpeg(image: Image.Image, size: Size | None, quality: int) -> bytes:
    """JPEG-encode ``image``, resized to exactly ``size`` when one is asked for."""
    if size is not None and size != image.size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    if image.mode != "RGB":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


class TestPatternBackend(CameraBackend):
    """Moving colour bars, a bouncing square and a timestamp, really JPEG-encoded."""

    __test__ = False  # not a pytest test class, despite the name
    name = BackendName.TEST_PATTERN

    def __init__(self, width: int, height: int) -> None:
        super().__init__(width, height)
        self._bars: Image.Image | None = None
        self._frame = 0

    def start(self) -> None:
        # Bars twice as wide as the frame: each frame crops a window that slides across them.
        bars = Image.new("RGB", (self.width * 2, self.height))
        draw = ImageDraw.Draw(bars)
        bar_width = max(1, self.width // len(_BAR_COLOURS))
        for index in range(2 * len(_BAR_COLOURS) + 1):
            colour = _BAR_COLOURS[index % len(_BAR_COLOURS)]
            left = index * bar_width
            draw.rectangle((left, 0, left + bar_width - 1, self.height), fill=colour)
        self._bars = bars

    def stop(self) -> None:
        self._bars = None

    def capture_jpeg(self, size: Size | None, quality: int) -> bytes:
        if self._bars is None:
            raise CameraBackendError("test pattern not started")
        self._frame += 1
        offset = (self._frame * 8) % self.width
        image = self._bars.crop((offset, 0, offset + self.width, self.height))
        draw = ImageDraw.Draw(image)
        box = max(8, self.height // 6)
        span_x = max(1, self.width - box)
        span_y = max(1, self.height - box)
        x = abs((self._frame * 13) % (2 * span_x) - span_x)
        y = abs((self._frame * 7) % (2 * span_y) - span_y)
        draw.rectangle((x, y, x + box, y + box), fill=(255, 255, 255), outline=(0, 0, 0))
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        text = f"{stamp}  #{self._frame}"
        draw.rectangle((0, self.height - 24, 8 * len(text) + 16, self.height), fill=(0, 0, 0))
        draw.text((8, self.height - 20), text, fill=(255, 255, 255))
        return encode_jpeg(image, size, quality)


class Picamera2Backend(CameraBackend):
    """The Pi camera through picamera2 (from Raspberry Pi OS's apt packages, not PyPI)."""

    name = BackendName.PICAMERA2

    def __init__(self, width: int, height: int) -> None:
        super().__init__(width, height)
        self._camera: Any = None

    def _module(self) -> Any:
        try:
            import picamera2
        except ImportError as err:
            raise CameraBackendError(
                f"picamera2 is not available ({err}); on Raspberry Pi OS: "
                "sudo apt install python3-picamera2, and create the venv with "
                "--system-site-packages"
            ) from err
        return picamera2

    def probe(self) -> None:
        module = self._module()
        try:
            cameras = module.Picamera2.global_camera_info()
        except Exception as err:
            raise CameraBackendError(f"libcamera cannot list cameras: {err}") from err
        if not cameras:
            raise CameraBackendError("no camera is connected")

    def start(self) -> None:
        module = self._module()
        try:
            camera = module.Picamera2()
            config = camera.create_video_configuration(
                main={"size": (self.width, self.height), "format": "RGB888"}
            )
            camera.configure(config)
            camera.start()
        except Exception as err:
            raise CameraBackendError(f"the camera did not start: {err}") from err
        self._camera = camera
        # Let auto-exposure settle so the first frame is not black.
        time.sleep(0.2)

    def stop(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        try:
            camera.stop()
            camera.close()
        except Exception:  # noqa: S110 - releasing is best effort; the next start reopens
            pass

    def capture_jpeg(self, size: Size | None, quality: int) -> bytes:
        if self._camera is None:
            raise CameraBackendError("camera not started")
        try:
            image = self._camera.capture_image("main")
        except Exception as err:
            raise CameraBackendError(f"capture failed: {err}") from err
        return encode_jpeg(image, size, quality)


def make_backend(choice: str, width: int, height: int, *, mock: bool) -> CameraBackend:
    """The backend for the configured ``backend`` key.

    ``auto`` means picamera2 when it can be imported; only with ``hardware = "mock"`` does a missing
    picamera2 fall back to the test pattern. On real hardware the picamera2 backend stays, so the
    camera shows an error saying what is missing instead of pretending with a test card.
    """
    if choice == "test_pattern":
        return TestPatternBackend(width, height)
    if choice == "auto" and mock and importlib.util.find_spec("picamera2") is None:
        return TestPatternBackend(width, height)
    return Picamera2Backend(width, height)
