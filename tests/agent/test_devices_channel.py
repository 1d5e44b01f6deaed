"""Every device kind through the real authenticated channel, asserting real MockFactory pins."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import pytest
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.client import BinaryPayload
from pi_secure_ws_protocol.devices import (
    CameraState,
    LightCapabilities,
    SprinklerCapabilities,
    SprinklerState,
)
from pi_secure_ws_protocol.errors import CommandError
from pi_secure_ws_testing.agent import AgentFactory, RunningAgent
from pi_secure_ws_testing.agent_toml import PORCH_LIGHT
from pi_secure_ws_testing.waiting import wait_for
from PIL import Image

DEVICES = (
    PORCH_LIGHT
    + """
[[light]]
id = "relay_light"
name = "Relay light"
pin = 27
active_high = false

[sprinklers]
max_concurrent = 1
max_run_seconds = 30

[sprinklers.pump]
pin = 25
lead = 0.05
lag = 0.05

[[sprinklers.zone]]
id = "lawn"
name = "Lawn"
pin = 22
default_seconds = 5
max_seconds = 10

[[sprinklers.zone]]
id = "beds"
name = "Beds"
pin = 23

[frame]
folder = "pictures"
interval = 60
crossfade = 0
max_upload_bytes = 200000

[camera]
backend = "test_pattern"
width = 320
height = 240
max_fps = 10
"""
)


def pin_of(agent: RunningAgent, device_id: str) -> Any:
    return agent.app.devices[device_id]._output.pin  # type: ignore[attr-defined]


def zone_pin(agent: RunningAgent, zone: str) -> Any:
    controller = agent.app.devices["sprinklers"]
    return controller._zones[zone].relay._output.pin  # type: ignore[attr-defined]


def pump_pin(agent: RunningAgent) -> Any:
    return agent.app.devices["sprinklers"]._pump._output.pin  # type: ignore[attr-defined]


def jpeg(width: int = 64, height: int = 48, color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
async def devices_agent(agent_factory: AgentFactory, tmp_path: Path) -> Any:
    # Pictures for the frame, in the state dir the config points at.
    async with agent_factory(
        DEVICES, clients={"homeassistant": "control", "panel": "viewer"}
    ) as agent:
        yield agent


async def test_hello_describes_every_device(devices_agent: RunningAgent) -> None:
    hello = await (await devices_agent.connected_client()).connect()
    kinds = {d.id: d.kind for d in hello.devices.values()}
    assert kinds == {
        "system": "system",
        "porch": "light",
        "relay_light": "light",
        "sprinklers": "sprinkler_controller",
        "frame": "picture_frame",
        "camera": "camera",
    }
    porch, relay = hello.devices["porch"].capabilities, hello.devices["relay_light"].capabilities
    assert isinstance(porch, LightCapabilities)
    assert isinstance(relay, LightCapabilities)
    assert porch.dimmable is True
    assert relay.dimmable is False
    controller = hello.devices["sprinklers"].capabilities
    assert isinstance(controller, SprinklerCapabilities)
    assert {z.id: z.max_seconds for z in controller.zones} == {"lawn": 10, "beds": 30}


async def test_light_levels_fades_and_active_low_wiring(devices_agent: RunningAgent) -> None:
    client = await devices_agent.connected_client()
    porch = pin_of(devices_agent, "porch")
    await client.call("porch", "turn_on", {"brightness": 128, "transition": 0.2})
    await asyncio.sleep(0.05)
    assert 0 < porch.state < 128 / 255  # mid-fade
    await wait_for(lambda: abs(porch.state - 128 / 255) < 0.01)
    relay = pin_of(devices_agent, "relay_light")
    assert relay.state == 1  # active low: off is a high pin
    await client.call("relay_light", "turn_on")
    assert relay.state == 0
    with pytest.raises(CommandError) as err:
        await client.call("relay_light", "turn_on", {"brightness": 10})
    assert "dimmable" in err.value.message


async def test_zone_turns_off_on_time_with_no_client_connected(
    devices_agent: RunningAgent,
) -> None:
    client = await devices_agent.connected_client()
    lawn, pump = zone_pin(devices_agent, "lawn"), pump_pin(devices_agent)
    await client.call("sprinklers", "run", {"zone": "lawn", "seconds": 0.4})
    await wait_for(lambda: lawn.state == 1 and pump.state == 1)
    await client.close()  # nobody is watching now
    await wait_for(lambda: not devices_agent.app.server.sessions)  # type: ignore[union-attr]
    started = time.monotonic()
    await wait_for(lambda: lawn.state == 0 and pump.state == 0, timeout=3)
    assert time.monotonic() - started < 1.0


async def test_sprinkler_limits_queue_and_rain_delay(devices_agent: RunningAgent) -> None:
    client = await devices_agent.connected_client()
    with pytest.raises(CommandError) as err:
        await client.call("sprinklers", "run", {"zone": "lawn", "seconds": 11})
    assert err.value.code == m.ERR_REFUSED
    assert "10" in err.value.message
    await client.call("sprinklers", "run", {"zone": "lawn", "seconds": 5})
    result = await client.call("sprinklers", "run", {"zone": "beds", "seconds": 5})
    assert result["status"] == "queued"
    state = (await client.get_states())["sprinklers"]
    assert isinstance(state, SprinklerState)
    assert [q.zone for q in state.queue] == ["beds"]
    await client.call("sprinklers", "stop_all")
    await wait_for(lambda: zone_pin(devices_agent, "lawn").state == 0)
    await client.call("sprinklers", "set_rain_delay", {"until": time.time() + 3600})
    with pytest.raises(CommandError) as err:
        await client.call("sprinklers", "run", {"zone": "lawn"})
    assert "rain delay" in err.value.message
    viewer = await devices_agent.connected_client("panel")
    with pytest.raises(CommandError) as err:
        await viewer.call("sprinklers", "clear_rain_delay")
    assert err.value.code == m.ERR_FORBIDDEN


async def test_frame_upload_thumbnail_and_refusals(devices_agent: RunningAgent) -> None:
    client = await devices_agent.connected_client()
    await client.call("frame", "put_picture", {"name": "holiday.jpg"}, data=jpeg(640, 480, "blue"))
    await client.call("frame", "show", {"name": "holiday.jpg"})
    viewer = await devices_agent.connected_client("panel")
    thumbnail = await viewer.call("frame", "thumbnail", {"size": 100})
    assert isinstance(thumbnail, BinaryPayload)
    assert thumbnail.header["content_type"] == "image/jpeg"
    image = Image.open(io.BytesIO(thumbnail.data))
    assert max(image.size) <= 100
    assert image.getpixel((image.size[0] // 2, image.size[1] // 2))[2] > 200  # blue
    with pytest.raises(CommandError):
        await client.call("frame", "put_picture", {"name": "bad.jpg"}, data=b"not a picture")
    with pytest.raises(CommandError):
        await client.call("frame", "put_picture", {"name": "../escape.jpg"}, data=jpeg())
    with pytest.raises(CommandError):
        await client.call("frame", "put_picture", {"name": "huge.jpg"}, data=b"\xff" * 300_000)
    with pytest.raises(CommandError) as err:
        await viewer.call("frame", "put_picture", {"name": "x.jpg"}, data=jpeg())
    assert err.value.code == m.ERR_FORBIDDEN
    assert not (devices_agent.config_dir.parent / "escape.jpg").exists()


async def test_camera_snapshot_and_stream_with_fast_and_slow_subscribers(
    devices_agent: RunningAgent,
) -> None:
    viewer = await devices_agent.connected_client("panel")
    snapshot = await viewer.call("camera", "snapshot", {"width": 160, "height": 120})
    assert isinstance(snapshot, BinaryPayload)
    assert Image.open(io.BytesIO(snapshot.data)).size == (160, 120)

    fast_client = await devices_agent.connected_client("panel")
    slow_client = await devices_agent.connected_client("homeassistant")
    fast = await fast_client.stream("camera", "stream", {"fps": 10})
    slow = await slow_client.stream("camera", "stream", {"fps": 10})
    counts = {"fast": 0, "slow": 0}

    async def consume(name: str, stream: Any, delay: float) -> None:
        async for frame in stream:
            assert frame[:2] == b"\xff\xd8"  # a JPEG
            counts[name] += 1
            await asyncio.sleep(delay)

    tasks = [
        asyncio.create_task(consume("fast", fast, 0)),
        asyncio.create_task(consume("slow", slow, 0.5)),
    ]
    await asyncio.sleep(2.0)
    await fast.close()
    await slow.close()
    for task in tasks:
        task.cancel()
    assert 12 <= counts["fast"] <= 24, counts  # ~10 fps, not slowed by the slow one
    assert counts["slow"] <= 7, counts  # it drops frames instead of queueing them
    await asyncio.sleep(0.3)
    camera = (await viewer.get_states())["camera"]
    assert isinstance(camera, CameraState)
    assert camera.subscribers == 0
    with pytest.raises(CommandError):
        await viewer.call("camera", "stream", {"fps": 50})


async def test_a_stream_the_device_ends_is_announced(devices_agent: RunningAgent) -> None:
    viewer = await devices_agent.connected_client("panel")
    control = await devices_agent.connected_client()
    first = await viewer.stream("camera", "stream", {"fps": 5})
    second = await viewer.stream("camera", "stream", {"fps": 5})
    assert first.stream_id != second.stream_id  # the session numbers streams itself
    await asyncio.wait_for(first.__anext__(), 3)
    # Privacy on ends every stream from the device's side; the client is told, not left waiting.
    await control.call("camera", "set_privacy", {"on": True})

    async def drain(stream: Any) -> int:
        return len([frame async for frame in stream])

    await asyncio.wait_for(asyncio.gather(drain(first), drain(second)), 3)
    assert first.closed
    assert second.closed
