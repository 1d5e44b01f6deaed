"""The picture frame on a temporary folder of generated pictures, drawn by pygame's dummy driver."""

from __future__ import annotations

import asyncio
import io
import logging
import signal
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from pi_secure_ws_protocol.const import Role
from pi_secure_ws_testing.devices import VIEWER, call
from pi_secure_ws_testing.waiting import wait_for
from PIL import Image

from pi_agent.devices import frame
from pi_agent.devices.base import BinaryResult, DeviceContext, DeviceError, Refused
from pi_agent.devices.display_power import probe_display_power
from pi_agent.devices.frame import PictureFrameDevice

RED = (220, 20, 20)
GREEN = (20, 200, 20)
BLUE = (20, 20, 220)
YELLOW = (230, 230, 20)
BLACK = (0, 0, 0)
SCREEN = (800, 480)
EXIF_ORIENTATION = 0x0112


@pytest.fixture(autouse=True)
def _headless_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")


def picture_bytes(
    colour: tuple[int, int, int],
    size: tuple[int, int] = (200, 100),
    kind: str = "JPEG",
    orientation: int | None = None,
) -> bytes:
    image = Image.new("RGB", size, colour)
    buffer = io.BytesIO()
    if orientation is None:
        image.save(buffer, format=kind)
    else:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = orientation
        image.save(buffer, format=kind, exif=exif.tobytes())
    return buffer.getvalue()


def add_picture(folder: Path, name: str, colour: tuple[int, int, int], **kwargs: Any) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = "PNG" if name.endswith(".png") else "JPEG"
    path.write_bytes(picture_bytes(colour, kind=kind, **kwargs))
    return path


@pytest.fixture
def pictures(tmp_path: Path) -> Path:
    folder = tmp_path / "state" / "pictures"
    add_picture(folder, "a.jpg", RED)
    add_picture(folder, "b.png", GREEN)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    add_picture(folder, "c.jpg", BLUE)
    add_picture(folder, "sub/d.jpg", YELLOW)
    (folder / "notes.txt").write_text("not a picture")
    return folder


DeviceFactory = Callable[..., PictureFrameDevice]


@pytest.fixture
async def make_frame(tmp_path: Path, pictures: Path) -> AsyncIterator[DeviceFactory]:
    started: list[PictureFrameDevice] = []

    def factory(**kwargs: Any) -> PictureFrameDevice:
        options: dict[str, Any] = {
            "interval": 60.0,
            "crossfade": 0.0,
            "root": tmp_path / "no-sysfs",
            "env": {},
        }
        options.update(kwargs)
        device = PictureFrameDevice(pictures, tmp_path / "state" / "frame.json", **options)
        started.append(device)
        return device

    yield factory
    for device in started:
        await device.stop()


async def started(factory: DeviceFactory, **kwargs: Any) -> PictureFrameDevice:
    device = factory(**kwargs)
    await device.start()
    return device


async def pixel(device: PictureFrameDevice, xy: tuple[int, int]) -> tuple[int, int, int]:
    screen = await asyncio.wait_for(device.screenshot(), 5)
    assert screen.size == SCREEN
    value = screen.getpixel(xy)
    assert isinstance(value, tuple)
    return (int(value[0]), int(value[1]), int(value[2]))


def near(actual: tuple[int, int, int], expected: tuple[int, int, int], slack: int = 12) -> bool:
    return all(abs(a - e) <= slack for a, e in zip(actual, expected, strict=True))


CENTRE = (400, 240)


def test_config_schema() -> None:
    section = frame.CONFIG_SCHEMA({})
    assert section["folder"] == "pictures"
    assert section["interval"] == 300.0
    assert section["max_upload_bytes"] == 10 * 1024 * 1024
    assert (section["width"], section["height"], section["thumbnail_size"]) == (800, 480, 320)
    with pytest.raises(vol.MultipleInvalid, match="extra keys not allowed"):
        frame.CONFIG_SCHEMA({"folders": "x"})
    with pytest.raises(vol.MultipleInvalid, match="interval"):
        frame.CONFIG_SCHEMA({"interval": 0})
    assert frame.used_pins(section) == []


async def test_create_puts_a_relative_folder_under_the_state_dir(tmp_path: Path) -> None:
    ctx = DeviceContext(pin_factory=None, state_dir=tmp_path, mock=True, config_dir=tmp_path)
    (device,) = frame.create(frame.CONFIG_SCHEMA({"crossfade": 0}), ctx)
    assert (device.id, device.kind, device.name) == ("frame", "picture_frame", "Picture frame")
    assert isinstance(device, PictureFrameDevice)
    await device.start()
    try:
        assert (tmp_path / "pictures").is_dir()
        assert device.state()["count"] == 0
        assert device.state()["current"] is None
    finally:
        await device.stop()


async def test_navigation_skips_a_corrupt_picture(
    make_frame: DeviceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    device = await started(make_frame)
    state = device.state()
    assert (state["current"], state["index"], state["count"]) == ("a.jpg", 0, 5)
    assert near(await pixel(device, CENTRE), RED)

    assert (await call(device, "next"))["current"] == "b.png"
    assert near(await pixel(device, CENTRE), GREEN)
    state = await call(device, "next")
    assert state["current"] == "c.jpg"  # broken.jpg skipped
    assert state["count"] == 4
    assert "skipping unreadable picture broken.jpg" in caplog.text
    assert near(await pixel(device, CENTRE), BLUE)
    assert (await call(device, "next"))["current"] == "sub/d.jpg"
    assert (await call(device, "next"))["current"] == "a.jpg"  # wraps around
    assert (await call(device, "previous"))["current"] == "sub/d.jpg"
    assert near(await pixel(device, CENTRE), YELLOW)

    assert (await call(device, "show", {"name": "b.png"}))["current"] == "b.png"
    with pytest.raises(Refused, match=r"no readable picture named 'nope\.jpg'"):
        await call(device, "show", {"name": "nope.jpg"})
    with pytest.raises(vol.Invalid, match=r"'\.\.'"):
        await call(device, "show", {"name": "../a.jpg"})
    assert device.state()["current"] == "b.png"


async def test_letterboxing_and_exif_orientation(make_frame: DeviceFactory, pictures: Path) -> None:
    # 800x400 stored, EXIF says "rotate 90 degrees clockwise": an upright 400x800 picture.
    add_picture(pictures, "upright.jpg", GREEN, size=(800, 400), orientation=6)
    device = await started(make_frame)
    # A landscape 2:1 picture on 800x480 fills the width with bars at the top and bottom.
    assert near(await pixel(device, (400, 10)), BLACK)
    assert near(await pixel(device, (30, 240)), RED)

    await call(device, "show", {"name": "upright.jpg"})
    # Upright it is 240x480 on screen: bars left and right, none at the top.
    assert near(await pixel(device, (100, 240)), BLACK)
    assert near(await pixel(device, (400, 10)), GREEN)
    thumbnail = await call(device, "thumbnail", who=VIEWER)
    assert isinstance(thumbnail, BinaryResult)
    image = Image.open(io.BytesIO(thumbnail.data))
    assert image.format == "JPEG"
    assert image.size == (160, 320)
    assert thumbnail.meta == {"name": "upright.jpg", "width": 160, "height": 320}


async def test_thumbnail(make_frame: DeviceFactory) -> None:
    device = await started(make_frame)
    assert device.actions()["thumbnail"].role is Role.VIEWER
    result = await call(device, "thumbnail", {"size": 64}, VIEWER)
    assert result.content_type == "image/jpeg"
    image = Image.open(io.BytesIO(result.data))
    image.load()
    assert image.size == (64, 32)
    assert near(image.getpixel((32, 16)), RED)  # type: ignore[arg-type]
    with pytest.raises(vol.Invalid):
        device.actions()["thumbnail"].schema({"size": 5})


async def test_the_slideshow_advances_on_its_own_and_pauses(make_frame: DeviceFactory) -> None:
    device = await started(make_frame, interval=0.05)
    await wait_for(lambda: device.state()["current"] == "b.png")
    await call(device, "pause")
    paused_at = device.state()["current"]
    await asyncio.sleep(0.2)
    assert device.state()["current"] == paused_at
    assert device.state()["paused"] is True
    await call(device, "resume")
    await wait_for(lambda: device.state()["current"] != paused_at)


class FakeInterval:
    """The slideshow's wait on a fake clock: an interval passes when the test says so."""

    def __init__(self) -> None:
        self.asked: list[float] = []  # the interval of every wait, in order
        self._pending: asyncio.Future[bool] | None = None
        self._called = asyncio.Event()

    async def __call__(self, seconds: float, reset: asyncio.Event) -> bool:
        self._pending = asyncio.get_running_loop().create_future()
        self.asked.append(seconds)
        self._called.set()
        reset_wait = asyncio.ensure_future(reset.wait())
        try:
            await asyncio.wait({self._pending, reset_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reset_wait.cancel()
        return self._pending.done()

    async def calls(self, count: int) -> None:
        """Until the slideshow has started ``count`` waits."""
        async with asyncio.timeout(10):
            while len(self.asked) < count:
                self._called.clear()
                await self._called.wait()

    async def elapse(self) -> None:
        """The interval passes: the slideshow takes its step and waits again."""
        count = len(self.asked)
        assert self._pending is not None and not self._pending.done()
        self._pending.set_result(True)
        await self.calls(count + 1)


async def test_the_slideshow_steps_only_when_its_interval_passes(
    make_frame: DeviceFactory,
) -> None:
    timer = FakeInterval()
    device = await started(make_frame, wait=timer)
    await timer.calls(1)
    assert timer.asked == [60.0]
    assert device.state()["current"] == "a.jpg"
    await timer.elapse()
    assert device.state()["current"] == "b.png"
    # A manual change starts a full interval again and never steps by itself.
    await call(device, "set_interval", {"seconds": 5})
    await timer.calls(3)
    assert timer.asked == [60.0, 60.0, 5.0]
    assert device.state()["current"] == "b.png"
    await call(device, "pause")
    await timer.calls(4)
    await timer.elapse()
    assert device.state()["current"] == "b.png"  # paused: the folder is rescanned, no step
    await call(device, "resume")
    await timer.calls(6)
    await timer.elapse()
    assert device.state()["current"] == "c.jpg"  # broken.jpg skipped
    assert timer.asked[-1] == 5.0


async def test_pictures_added_and_removed_while_running(
    make_frame: DeviceFactory, pictures: Path
) -> None:
    device = await started(make_frame, interval=0.05)
    await call(device, "pause")
    await call(device, "show", {"name": "c.jpg"})
    add_picture(pictures, "later/e.jpg", RED)
    await wait_for(lambda: device.state()["count"] == 6)  # the paused frame still rescans
    (pictures / "c.jpg").unlink()
    # The picture on screen is gone: the frame moves on to the one that followed it.
    await wait_for(lambda: device.state()["current"] == "later/e.jpg")
    assert near(await pixel(device, CENTRE), RED)
    assert device.state()["count"] == 5


async def test_put_picture(make_frame: DeviceFactory, pictures: Path, tmp_path: Path) -> None:
    device = await started(make_frame, max_upload_bytes=4096)
    data = picture_bytes(BLUE, kind="PNG")
    answer = await call(device, "put_picture", {"name": "uploads/new.png", "data": data})
    assert answer == {"name": "uploads/new.png", "bytes": len(data), "width": 200, "height": 100}
    saved = pictures / "uploads" / "new.png"
    assert saved.read_bytes() == data
    assert stat.S_IMODE(saved.stat().st_mode) == 0o644
    assert device.state()["count"] == 6
    assert (await call(device, "show", {"name": "uploads/new.png"}))["current"] == "uploads/new.png"
    assert not [p for p in pictures.rglob(".*")]  # no temporary file left behind

    noisy = Image.effect_noise((256, 256), 64).convert("RGB")
    big = io.BytesIO()
    noisy.save(big, format="PNG")
    with pytest.raises(Refused, match="the limit is 4096"):
        await call(device, "put_picture", {"name": "big.png", "data": big.getvalue()})
    with pytest.raises(Refused, match="not a readable picture"):
        await call(device, "put_picture", {"name": "bad.jpg", "data": b"\xff\xd8 nonsense"})
    truncated = picture_bytes(RED, size=(300, 300))[:600]
    with pytest.raises(Refused, match="not a readable picture"):
        await call(device, "put_picture", {"name": "cut.jpg", "data": truncated})
    with pytest.raises(Refused, match="PNG picture but the name"):
        await call(device, "put_picture", {"name": "wrong.jpg", "data": data})
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, format="GIF")
    with pytest.raises(vol.Invalid, match="must end in"):
        await call(device, "put_picture", {"name": "anim.gif", "data": gif.getvalue()})
    for name in ("../evil.jpg", "sub/../../evil.jpg", "/tmp/evil.jpg", ".hidden.jpg", "a\\b.jpg"):
        with pytest.raises(vol.Invalid):
            await call(device, "put_picture", {"name": name, "data": data})
    with pytest.raises(vol.Invalid, match="bytes"):
        await call(device, "put_picture", {"name": "text.png", "data": "not bytes"})
    assert sorted(p.name for p in tmp_path.rglob("*.jpg") if "evil" in p.name) == []
    assert not (pictures / "bad.jpg").exists()
    assert not (pictures / "wrong.jpg").exists()
    assert device.state()["count"] == 6


async def test_upload_through_a_symlinked_folder_is_refused(
    make_frame: DeviceFactory, pictures: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (pictures / "link").symlink_to(outside)
    device = await started(make_frame)
    with pytest.raises(Exception, match="outside the pictures folder"):
        await call(device, "put_picture", {"name": "link/x.jpg", "data": picture_bytes(RED)})
    assert list(outside.iterdir()) == []


async def test_put_into_an_empty_frame_shows_it(make_frame: DeviceFactory, pictures: Path) -> None:
    for path in list(pictures.rglob("*")):
        if path.is_file():
            path.unlink()
    device = await started(make_frame)
    assert device.state()["current"] is None
    with pytest.raises(Refused, match="no picture is showing"):
        await call(device, "thumbnail", who=VIEWER)
    await call(device, "put_picture", {"name": "first.jpg", "data": picture_bytes(GREEN)})
    assert device.state()["current"] == "first.jpg"
    assert near(await pixel(device, CENTRE), GREEN)


async def test_delete_picture(make_frame: DeviceFactory, pictures: Path) -> None:
    device = await started(make_frame)
    await call(device, "show", {"name": "b.png"})
    assert await call(device, "delete_picture", {"name": "b.png"}) == {"deleted": "b.png"}
    assert not (pictures / "b.png").exists()
    state = device.state()
    assert state["current"] == "c.jpg"  # broken.jpg, next in line, is skipped
    with pytest.raises(Refused, match=r"no picture named 'b\.png'"):
        await call(device, "delete_picture", {"name": "b.png"})
    with pytest.raises(vol.Invalid):
        await call(device, "delete_picture", {"name": "../state/frame.json"})
    assert (await call(device, "delete_picture", {"name": "sub/d.jpg"})) == {"deleted": "sub/d.jpg"}
    assert device.state()["count"] == 2


async def test_resumes_at_the_same_picture_after_a_restart(make_frame: DeviceFactory) -> None:
    device = await started(make_frame)
    await call(device, "show", {"name": "sub/d.jpg"})
    await call(device, "set_interval", {"seconds": 45})
    await call(device, "pause")
    await device.stop()

    again = await started(make_frame)
    state = again.state()
    assert state["current"] == "sub/d.jpg"
    assert state["interval"] == 45.0
    assert state["paused"] is True
    assert near(await pixel(again, CENTRE), YELLOW)


async def test_resume_after_the_picture_was_removed(
    make_frame: DeviceFactory, pictures: Path
) -> None:
    device = await started(make_frame)
    await call(device, "show", {"name": "c.jpg"})
    await device.stop()
    (pictures / "c.jpg").unlink()
    again = await started(make_frame)
    assert again.state()["current"] == "sub/d.jpg"  # the one that followed it


async def test_albums(make_frame: DeviceFactory, pictures: Path) -> None:
    (pictures / "empty").mkdir()
    device = await started(make_frame)
    assert device.capabilities()["albums"] == ["empty", "sub"]
    state = await call(device, "set_album", {"album": "sub"})
    assert (state["album"], state["current"], state["count"]) == ("sub", "sub/d.jpg", 1)
    with pytest.raises(Refused, match="no album"):
        await call(device, "set_album", {"album": "holidays"})
    with pytest.raises(Refused, match="has no pictures"):
        await call(device, "set_album", {"album": "empty"})
    with pytest.raises(Refused, match="in album 'sub'"):
        await call(device, "show", {"name": "a.jpg"})
    with pytest.raises(vol.Invalid):
        await call(device, "set_album", {"album": "../.."})
    state = await call(device, "set_album", {"album": None})
    assert (state["album"], state["current"], state["count"]) == (None, "sub/d.jpg", 5)


async def test_shuffle_visits_every_picture_once(make_frame: DeviceFactory) -> None:
    device = await started(make_frame)
    await call(device, "next")
    assert (await call(device, "next"))["count"] == 4  # broken.jpg met and set aside
    state = await call(device, "set_shuffle", {"shuffle": True})
    assert state["shuffle"] is True
    seen = [state["current"]]
    for _ in range(state["count"] - 1):
        seen.append((await call(device, "next"))["current"])
    assert sorted(seen) == ["a.jpg", "b.png", "c.jpg", "sub/d.jpg"]
    assert (await call(device, "next"))["current"] == seen[0]


async def test_crossfade_ends_on_the_new_picture(make_frame: DeviceFactory) -> None:
    device = await started(make_frame, crossfade=0.1)
    await call(device, "next")
    assert near(await pixel(device, CENTRE), GREEN)


async def test_display_power_unsupported_blanks_the_picture(make_frame: DeviceFactory) -> None:
    device = await started(make_frame)
    capabilities = device.capabilities()
    assert capabilities["display_power"] is False
    assert capabilities["display_method"] == "unsupported"
    assert capabilities["backlight"] is False
    answer = await call(device, "set_display", {"on": False})
    assert answer == {"display_on": False, "display_method": "unsupported"}
    assert device.state()["display_on"] is False
    assert near(await pixel(device, CENTRE), BLACK, 0)
    await call(device, "set_display", {"on": True})
    assert near(await pixel(device, CENTRE), RED)


async def test_software_dimming(make_frame: DeviceFactory) -> None:
    device = await started(make_frame)
    answer = await call(device, "set_brightness", {"brightness": 128})
    assert answer == {"brightness": 128, "method": "software"}
    dimmed = await pixel(device, CENTRE)
    assert near(dimmed, (RED[0] // 2, RED[1] // 2, RED[2] // 2), 8)
    with pytest.raises(vol.Invalid):
        await call(device, "set_brightness", {"brightness": 256})


def fake_backlight(root: Path) -> Path:
    backlight = root / "sys/class/backlight/10-0045"
    backlight.mkdir(parents=True)
    (backlight / "bl_power").write_text("0\n")
    (backlight / "brightness").write_text("31\n")
    (backlight / "max_brightness").write_text("31\n")
    return backlight


async def test_dsi_backlight_power_and_brightness(
    make_frame: DeviceFactory, tmp_path: Path
) -> None:
    root = tmp_path / "sysroot"
    backlight = fake_backlight(root)
    device = await started(make_frame, root=root)
    capabilities = device.capabilities()
    assert capabilities["display_power"] is True
    assert capabilities["display_method"] == "backlight"
    assert capabilities["backlight"] is True
    await call(device, "set_display", {"on": False})
    assert (backlight / "bl_power").read_text() == "4"
    await call(device, "set_display", {"on": True})
    assert (backlight / "bl_power").read_text() == "0"
    answer = await call(device, "set_brightness", {"brightness": 128})
    assert answer == {"brightness": 128, "method": "backlight"}
    assert (backlight / "brightness").read_text() == "16"
    await call(device, "set_brightness", {"brightness": 1})
    assert (backlight / "brightness").read_text() == "1"  # dim, never off by rounding
    assert near(await pixel(device, CENTRE), RED)  # the hardware dims, not the renderer
    await device.stop()
    # The brightness is restored on start.
    (backlight / "brightness").write_text("31\n")
    await started(make_frame, root=root)
    assert (backlight / "brightness").read_text() == "1"


async def test_wayland_uses_wlopm(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "calls.txt"
    wlopm = bin_dir / "wlopm"
    wlopm.write_text(f'#!/bin/sh\necho "$@" >> {record}\n')
    wlopm.chmod(0o755)
    power = probe_display_power(
        tmp_path / "sysroot", {"WAYLAND_DISPLAY": "wayland-1", "PATH": str(bin_dir)}
    )
    assert power.method == "wlopm"
    await power.set_power(False)
    await power.set_power(True)
    assert record.read_text().splitlines() == ["--off *", "--on *"]
    assert probe_display_power(tmp_path / "sysroot", {"PATH": str(bin_dir)}).method == "unsupported"


async def test_wayland_without_wlopm_uses_wlr_randr_for_every_output(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "calls.txt"
    listing = tmp_path / "listing.txt"
    listing.write_text('HDMI-A-1 "Dell"\n  Enabled: yes\nDSI-1 "Panel"\n  Enabled: yes\n')
    wlr_randr = bin_dir / "wlr-randr"
    wlr_randr.write_text(
        f'#!/bin/sh\nif [ $# -eq 0 ]; then cat {listing}; else echo "$@" >> {record}; fi\n'
    )
    wlr_randr.chmod(0o755)
    power = probe_display_power(
        tmp_path / "sysroot", {"WAYLAND_DISPLAY": "wayland-1", "PATH": str(bin_dir)}
    )
    assert power.method == "wlr-randr"
    await power.set_power(False)
    await power.set_power(True)
    assert record.read_text().splitlines() == [
        "--output HDMI-A-1 --off",
        "--output DSI-1 --off",
        "--output HDMI-A-1 --on",
        "--output DSI-1 --on",
    ]
    listing.write_text("")  # the compositor lists nothing: say so rather than pretend
    with pytest.raises(DeviceError, match="lists no outputs"):
        await power.set_power(False)


async def test_drm_connector_status(tmp_path: Path) -> None:
    connector = tmp_path / "sys/class/drm/card1-HDMI-A-1"
    connector.mkdir(parents=True)
    (connector / "status").write_text("connected\n")
    power = probe_display_power(tmp_path, {})
    assert power.method == "drm"
    await power.set_power(False)
    assert (connector / "status").read_text() == "off"
    await power.set_power(True)
    assert (connector / "status").read_text() == "detect"


def test_the_renderer_leaves_sigterm_to_the_agent(tmp_path: Path) -> None:
    # SDL takes over SIGTERM unless told not to; the agent needs it to close the valves.
    script = (
        "import os, signal, time\n"
        "from pi_agent.devices.frame_display import FrameRenderer\n"
        "renderer = FrameRenderer(64, 64, 0)\n"
        "renderer.start()\n"
        "assert renderer.error is None, renderer.error\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(5)\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=20, check=False
    )
    assert process.returncode == -signal.SIGTERM, process.stderr.decode()


def test_control_actions_need_control_and_thumbnail_is_for_viewers(tmp_path: Path) -> None:
    device = PictureFrameDevice(tmp_path / "p", tmp_path / "frame.json", root=tmp_path, env={})
    roles = {name: action.role for name, action in device.actions().items()}
    assert roles.pop("thumbnail") is Role.VIEWER
    assert set(roles) == {
        "next",
        "previous",
        "pause",
        "resume",
        "show",
        "set_interval",
        "set_shuffle",
        "set_album",
        "set_display",
        "set_brightness",
        "put_picture",
        "delete_picture",
    }
    assert set(roles.values()) == {Role.CONTROL}


async def test_decodes_run_at_a_lower_priority(make_frame: DeviceFactory) -> None:
    import os
    import threading

    from pi_agent.devices.picture_decode import DECODE_NICENESS

    device = make_frame()

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    own = niceness()
    # A thumbnail or slideshow decode yields the CPU to logins and commands on the event loop.
    assert await device._decoder.run(niceness) == min(19, own + DECODE_NICENESS)
