"""The typed device contract (protocol/devices): round trips, malformed fields, a real agent.

Every sample here is a wire object as the agent sends it; decoding then encoding must give it back
exactly (same keys, same order, same number types). Every field of every sample, removed or given
a value of the wrong type, must be a ProtocolError naming the field, never a KeyError or a
TypeError. A real agent with one device of each kind is held to the same round trip, and every
action's typed parameters must pass that agent's own schema for the action.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pytest
from pi_secure_ws_protocol.client import StateChanged
from pi_secure_ws_protocol.devices import (
    CONTRACTS,
    ActionParams,
    DeviceDecoder,
    DeviceKind,
    Opaque,
    WireModel,
    camera,
    decode_capabilities,
    decode_state,
    frame,
    light,
    sprinklers,
    system,
)
from pi_secure_ws_protocol.devices.wire import Fields
from pi_secure_ws_protocol.errors import ProtocolError
from pi_secure_ws_testing.agent import AgentFactory

FLAGS = {"under_voltage": True, "freq_capped": False, "throttled": True, "soft_temp_limit": False}
GPIO = {"factory": "LGPIOFactory", "chip": "/dev/gpiochip0", "chip_label": "pinctrl-rp1"}
SAMPLES: dict[type[WireModel], list[dict[str, Any]]] = {
    system.SystemCapabilities: [
        {
            "sensors": [sensor.value for sensor in system.SystemSensor],
            "restart_agent": True,
            "reboot": False,
            "gpio": {**GPIO, "found_by": "label", "error": None},
        },
        {"sensors": [], "restart_agent": False, "reboot": False, "gpio": {}},
    ],
    system.SystemState: [
        {
            "hostname": "gardenpi",
            "model": "Raspberry Pi 4 Model B Rev 1.5",
            "uptime": 2540.4,
            "cpu_temperature": 48.3,
            "load": {"1m": 0.55, "5m": 0.68, "15m": 0},
            "disk": {"free_bytes": 8275761561, "total_bytes": 31268536320, "free_percent": 26.5},
            "memory": {
                "total_bytes": 3978678272,
                "available_bytes": 3261161472,
                "used_percent": 18.0,
            },
            "wifi": {"interface": "wlan0", "link_quality": 70.0, "signal_dbm": -40.0},
            "throttled": {"raw": "0x50005", "now": FLAGS, "since_boot": FLAGS},
        },
        {
            "hostname": "dev",
            "model": None,
            "uptime": None,
            "cpu_temperature": None,
            "load": None,
            "disk": {"free_bytes": 0, "total_bytes": 0, "free_percent": None},
            "memory": None,
            "wifi": None,
            "throttled": None,
        },
    ],
    light.LightCapabilities: [
        {"dimmable": True, "supports_transition": True, "effects": ["blink", "pulse"]},
        {"dimmable": False, "supports_transition": False, "effects": ["blink"]},
    ],
    light.LightState: [
        {"on": True, "effect": "pulse", "brightness": 128},
        {"on": False, "effect": None},
    ],
    sprinklers.SprinklerCapabilities: [
        {
            "zones": [
                {"id": "lawn", "name": "Lawn", "default_seconds": 5.0, "max_seconds": 10.0},
                {"id": "beds", "name": "Beds", "default_seconds": 600, "max_seconds": 1800.5},
            ],
            "max_concurrent": 1,
            "max_run_seconds": 1800.5,
            "has_pump": True,
        }
    ],
    sprinklers.SprinklerState: [
        {
            "zones": {
                "lawn": {
                    "open": True,
                    "remaining": 4.2,
                    "ends_at": "2026-12-01T17:40:00.123+00:00",
                },
                "beds": {"open": False, "remaining": None, "ends_at": None},
            },
            "queue": [{"zone": "beds", "seconds": 600}],
            "running": ["lawn"],
            "pump": True,
            "rain_delay_until": "2026-12-02T06:00:00.000+01:00",
            "fault": "GPIO22: write failed",
        },
        {
            "zones": {},
            "queue": [],
            "running": [],
            "pump": None,
            "rain_delay_until": None,
            "fault": None,
        },
    ],
    sprinklers.RunAnswer: [
        {
            "zone": "lawn",
            "seconds": 5.0,
            "status": "running",
            "ends_at": "2026-12-01T17:40:00.123+00:00",
        },
        {
            "zone": "lawn",
            "seconds": 5.0,
            "status": "running",
            "ends_at": "2026-12-01T17:40:00.123+00:00",
            "capped": True,
        },
        {"zone": "lawn", "seconds": 5.0, "status": "starting", "ends_at": None},
        {"zone": "beds", "seconds": 600, "status": "queued", "position": 2},
    ],
    frame.FrameCapabilities: [
        {
            "display_power": True,
            "display_method": "drm",
            "backlight": False,
            "albums": ["holidays", "garden"],
            "max_upload_bytes": 10485760,
            "thumbnail_size": 320,
        }
    ],
    frame.FrameState: [
        {
            "current": "holidays/beach.jpg",
            "index": 0,
            "count": 3,
            "paused": False,
            "interval": 300.0,
            "shuffle": True,
            "display_on": True,
            "display_method": "unsupported",
            "brightness": 255,
            "album": "holidays",
            "error": None,
        },
        {
            "current": None,
            "index": None,
            "count": 0,
            "paused": True,
            "interval": 60,
            "shuffle": False,
            "display_on": False,
            "display_method": "backlight",
            "brightness": 0,
            "album": None,
            "error": "no display",
        },
    ],
    camera.CameraCapabilities: [
        {"width": 1280, "height": 720, "max_fps": 10.0, "backend": "picamera2"},
    ],
    camera.CameraState: [
        {"streaming": True, "subscribers": 2, "privacy": False, "error": None, "fps": 5.0},
        {"streaming": False, "subscribers": 0, "privacy": True, "error": "no camera", "fps": 0},
    ],
}
# Keys whose absence is allowed (light brightness: dimmable lights only) and objects whose keys
# are names, not fields (zone ids, gpio diagnostics).
OPTIONAL_KEYS = {"brightness", "capped"}
NAMED_KEYS_UNDER = {"zones", "gpio"}


def wire_text(value: Any) -> str:
    """The agent's compact JSON, key order included: "exactly" means these strings are equal."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def samples() -> Iterator[tuple[type[WireModel], dict[str, Any]]]:
    for cls, wires in SAMPLES.items():
        for wire in wires:
            yield cls, wire


def _sample_id(value: Any) -> str:
    return value.__name__ if isinstance(value, type) else ""


@pytest.mark.parametrize(("cls", "wire"), list(samples()), ids=_sample_id)
def test_every_sample_round_trips_exactly(cls: type[WireModel], wire: dict[str, Any]) -> None:
    decoded = cls.from_wire(copy.deepcopy(wire))
    assert isinstance(decoded, cls)
    assert wire_text(decoded.to_wire()) == wire_text(wire)
    assert cls.from_wire(decoded.to_wire()) == decoded


def test_every_kind_has_samples_and_a_registry_entry() -> None:
    assert set(CONTRACTS) == {kind.value for kind in DeviceKind}
    for contract in CONTRACTS.values():
        assert contract.capabilities in SAMPLES, contract.kind
        assert contract.state in SAMPLES, contract.kind
        for wire in SAMPLES[contract.capabilities]:
            assert decode_capabilities(contract.kind, wire).to_wire() == wire
        for wire in SAMPLES[contract.state]:
            assert decode_state(contract.kind, wire).to_wire() == wire


def test_a_kind_this_version_does_not_know_is_kept_as_it_came() -> None:
    wire = {"level": 3, "nested": {"a": [1, 2]}}
    for decoded in (decode_capabilities("weather_station", wire), decode_state("x", wire)):
        assert isinstance(decoded, Opaque)
        assert decoded.to_wire() == wire
        assert decoded == Opaque(wire)
        assert decoded != wire
        assert "level" in repr(decoded)
    with pytest.raises(ProtocolError, match="expected an object, got a list"):
        decode_state("weather_station", [1])


# ---- malformed fields ------------------------------------------------------------------------


def _wrong_value(value: Any) -> Any:
    """A value of another JSON type than ``value`` (None stands for a nullable field)."""
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return 1
    if isinstance(value, list):
        return "x"
    if isinstance(value, dict):
        return []
    return [1]


def _mutations(
    wire: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[str, tuple[str | int, ...], Any]]:
    """(what, path, replacement) for every field: removed ("missing") or of the wrong type."""
    if isinstance(wire, dict):
        named = bool(path) and path[-1] in NAMED_KEYS_UNDER
        for key, value in wire.items():
            if not named and key not in OPTIONAL_KEYS:
                yield "missing", (*path, key), None
            yield "wrong type", (*path, key), _wrong_value(value)
            yield from _mutations(value, (*path, key))
    elif isinstance(wire, list):
        for index, value in enumerate(wire):
            yield "wrong type", (*path, index), _wrong_value(value)
            yield from _mutations(value, (*path, index))


def _mutated(wire: dict[str, Any], what: str, path: tuple[str | int, ...], new: Any) -> Any:
    result = copy.deepcopy(wire)
    parent: Any = result
    for step in path[:-1]:
        parent = parent[step]
    if what == "missing":
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return result


def malformed() -> Iterator[Any]:
    for cls, wire in samples():
        for what, path, new in _mutations(wire):
            name = ".".join(str(step) for step in path)
            yield pytest.param(
                cls, _mutated(wire, what, path, new), path, id=f"{cls.__name__}-{name}-{what}"
            )


@pytest.mark.parametrize(("cls", "wire", "path"), list(malformed()))
def test_every_malformed_field_is_a_protocol_error_naming_it(
    cls: type[WireModel], wire: Any, path: tuple[str | int, ...]
) -> None:
    with pytest.raises(ProtocolError) as caught:
        cls.from_wire(wire)
    message = str(caught.value)
    last = path[-1]
    assert (f"[{last}]" if isinstance(last, int) else f".{last}") in message, message
    assert message.startswith(cls.WHERE), message


@pytest.mark.parametrize(
    ("cls", "key", "value", "problem"),
    [
        (light.LightState, "brightness", 256, "out of range 0..255"),
        (light.LightState, "brightness", -1, "out of range 0..255"),
        (light.LightState, "brightness", 1.5, "expected a whole number"),
        (frame.FrameState, "count", -1, "out of range 0.."),
        (sprinklers.SprinklerCapabilities, "max_concurrent", 0, "out of range 1.."),
        (sprinklers.SprinklerState, "rain_delay_until", "tomorrow", "an ISO 8601 date-time"),
        (sprinklers.SprinklerState, "rain_delay_until", 1764651600, "a string or null"),
        (sprinklers.RunAnswer, "status", "done", "unknown run status 'done'"),
        (camera.CameraState, "fps", True, "expected a number, got a boolean"),
    ],
)
def test_values_of_the_right_type_but_not_allowed(
    cls: type[WireModel], key: str, value: Any, problem: str
) -> None:
    wire = {**SAMPLES[cls][0], key: value}
    with pytest.raises(ProtocolError, match=problem):
        cls.from_wire(wire)


def test_a_long_bad_value_is_shortened_in_the_message() -> None:
    with pytest.raises(ProtocolError) as caught:
        light.LightState.from_wire({"on": "x" * 200, "effect": None})
    assert len(str(caught.value)) < 120
    assert str(caught.value).endswith("...")


def test_a_non_json_value_is_named_by_its_type() -> None:
    with pytest.raises(ProtocolError, match="expected a boolean, got bytes"):
        light.LightState.from_wire({"on": b"1", "effect": None})


def test_the_base_classes_are_abstract() -> None:
    with pytest.raises(NotImplementedError):
        WireModel.read(Fields({}, "x"))
    with pytest.raises(NotImplementedError):
        WireModel().to_wire()


# ---- typed values ----------------------------------------------------------------------------


def test_typed_fields_read_as_the_platforms_need_them() -> None:
    state = sprinklers.SprinklerState.from_wire(SAMPLES[sprinklers.SprinklerState][0])
    ends_at = state.zones["lawn"].ends_at
    assert ends_at == datetime(2026, 12, 1, 17, 40, 0, 123000, tzinfo=UTC)
    assert state.rain_delay_until is not None
    assert state.rain_delay_until.utcoffset() == timedelta(hours=1)
    assert state.is_queued("beds")
    assert not state.is_queued("lawn")
    capabilities = sprinklers.SprinklerCapabilities.from_wire(
        SAMPLES[sprinklers.SprinklerCapabilities][0]
    )
    assert capabilities.zone("beds") == sprinklers.Zone(
        id="beds", name="Beds", default_seconds=600, max_seconds=1800.5
    )
    assert capabilities.zone("nope") is None
    system_state = system.SystemState.from_wire(SAMPLES[system.SystemState][0])
    assert system_state.load is not None
    assert system_state.load.one == 0.55
    assert system_state.throttled is not None
    assert system_state.throttled.now.under_voltage
    assert system.SystemCapabilities.from_wire(SAMPLES[system.SystemCapabilities][0]).has_sensor(
        system.SystemSensor.WIFI
    )
    lights = light.LightCapabilities.from_wire(
        {"dimmable": True, "supports_transition": True, "effects": ["pulse", "rainbow", "blink"]}
    )
    assert lights.known_effects == (light.LightEffect.PULSE, light.LightEffect.BLINK)
    assert {effect: params.action for effect, params in light.EFFECT_PARAMS.items()} == {
        light.LightEffect.BLINK: light.LightAction.BLINK,
        light.LightEffect.PULSE: light.LightAction.PULSE,
    }


def test_the_agent_can_build_its_wire_dicts_from_typed_fields() -> None:
    zone = sprinklers.ZoneState(
        open=True, remaining=3.0, ends_at=datetime(2026, 12, 1, 17, 40, tzinfo=UTC)
    )
    state = sprinklers.SprinklerState(
        zones={"lawn": zone},
        queue=(sprinklers.QueuedRun(zone="beds", seconds=60.0),),
        running=("lawn",),
        pump=True,
        rain_delay_until=None,
        fault=None,
    )
    assert state.to_wire()["zones"]["lawn"]["ends_at"] == "2026-12-01T17:40:00.000+00:00"
    assert light.LightState(on=False, effect=None).to_wire() == {"on": False, "effect": None}
    assert wire_text(
        light.LightState(on=True, effect=light.LightEffect.BLINK, brightness=9).to_wire()
    ) == ('{"on":true,"effect":"blink","brightness":9}')


# ---- actions and their parameters ------------------------------------------------------------

PARAMS: list[ActionParams] = [
    light.TurnOn(brightness=128, transition=1.5),
    light.TurnOn(),
    light.TurnOff(transition=0.0),
    light.Toggle(),
    light.Blink(on_time=0.5, off_time=0.5, count=3, brightness=200),
    light.Pulse(fade_in=1, fade_out=2, count=None),
    sprinklers.RunZone(zone="lawn", seconds=5.0),
    sprinklers.RunZone(zone="lawn"),
    sprinklers.StopZone(zone="beds"),
    sprinklers.SetRainDelay(until=datetime.now(UTC) + timedelta(days=1)),
    frame.ShowPicture(name="holidays/beach.jpg"),
    frame.SetInterval(seconds=60),
    frame.SetShuffle(shuffle=True),
    frame.SetAlbum(album=None),
    frame.SetAlbum(album="holidays"),
    frame.SetDisplay(on=False),
    frame.SetBrightness(brightness=10),
    frame.PutPicture(name="beach.jpg"),
    frame.DeletePicture(name="beach.jpg"),
    frame.Thumbnail(size=64),
    frame.Thumbnail(),
    camera.Snapshot(width=64),
    camera.Stream(fps=2.5),
    camera.Stream(),
    camera.SetPrivacy(on=True),
]


def test_params_leave_out_what_the_agent_defaults() -> None:
    assert light.TurnOn().to_wire() == {}
    assert light.TurnOn(brightness=0).to_wire() == {"brightness": 0}
    assert sprinklers.RunZone(zone="lawn").to_wire() == {"zone": "lawn"}
    assert frame.SetAlbum(album=None).to_wire() == {"album": None}
    until = datetime(2026, 12, 2, 6, tzinfo=UTC)
    assert sprinklers.SetRainDelay(until=until).to_wire() == {
        "until": "2026-12-02T06:00:00.000+00:00"
    }
    with pytest.raises(ValueError, match="time zone"):
        sprinklers.SetRainDelay(until=datetime(2026, 12, 2, 6)).to_wire()


def test_every_action_of_every_kind_is_named_and_every_params_class_is_tested() -> None:
    kinds = {
        light.LightAction: light,
        sprinklers.SprinklerAction: sprinklers,
        frame.FrameAction: frame,
        camera.CameraAction: camera,
    }
    tested = {type(params) for params in PARAMS}
    for actions, module in kinds.items():
        classes = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, ActionParams)
            and value is not ActionParams
        ]
        assert classes, module.__name__
        for cls in classes:
            assert cls in tested, cls.__name__
            assert cls.action in set(actions), cls.__name__
            assert dataclasses.is_dataclass(cls)


# ---- a real agent ----------------------------------------------------------------------------

EVERY_KIND = """
[[light]]
id = "porch"
pin = 17
dimmable = true

[[light]]
id = "relay"
pin = 27

[sprinklers]
max_concurrent = 1

[sprinklers.pump]
pin = 25
lead = 0
lag = 0

[[sprinklers.zone]]
id = "lawn"
name = "Lawn"
pin = 22
default_seconds = 30

[[sprinklers.zone]]
id = "beds"
pin = 23

[frame]
crossfade = 0

[camera]
backend = "test_pattern"
width = 320
height = 240
"""


def _assert_round_trip(kind: str, capabilities: Any, state: Any) -> None:
    typed_capabilities = decode_capabilities(kind, capabilities)
    typed_state = decode_state(kind, state)
    assert not isinstance(typed_capabilities, Opaque), kind
    assert not isinstance(typed_state, Opaque), kind
    assert wire_text(typed_capabilities.to_wire()) == wire_text(capabilities), kind
    assert wire_text(typed_state.to_wire()) == wire_text(state), kind


async def test_a_real_agents_every_device_decodes_and_re_encodes_exactly(
    agent_factory: AgentFactory,
) -> None:
    async with agent_factory(EVERY_KIND) as agent:
        client = await agent.connected_client()
        hello = client.hello
        assert hello is not None
        wire_devices = hello.raw["devices"]
        assert {device["kind"] for device in wire_devices} == {kind.value for kind in DeviceKind}
        for device in wire_devices:
            _assert_round_trip(
                device["kind"], device["capabilities"], hello.raw["states"][device["id"]]
            )

        # Drive every device away from its idle state so the nullable fields carry values.
        jpeg = (
            await client.call(
                "camera", camera.CameraAction.SNAPSHOT, camera.Snapshot(width=64).to_wire()
            )
        ).data
        calls: list[tuple[str, ActionParams]] = [
            ("porch", light.Pulse(fade_in=5, fade_out=5, brightness=100)),
            ("relay", light.TurnOn()),
            ("sprinklers", sprinklers.RunZone(zone="lawn", seconds=60)),
            ("sprinklers", sprinklers.RunZone(zone="beds")),
            ("sprinklers", sprinklers.SetRainDelay(until=datetime.now(UTC) + timedelta(hours=2))),
            ("frame", frame.SetInterval(seconds=120.5)),
        ]
        answers = {}
        for device_id, params in calls:
            answers[device_id, params.action] = await client.call(
                device_id, params.action, params.to_wire()
            )
        await client.call(
            "frame", frame.PutPicture.action, frame.PutPicture(name="a.jpg").to_wire(), data=jpeg
        )
        run = sprinklers.RunAnswer.from_wire(answers["sprinklers", sprinklers.SprinklerAction.RUN])
        assert run.zone == "beds"  # the second run, queued behind the first
        assert run.status is sprinklers.RunStatus.QUEUED

        for device in agent.app.devices.values():
            _assert_round_trip(device.kind, device.capabilities(), device.state())
        typed = sprinklers.SprinklerState.from_wire(agent.app.devices["sprinklers"].state())
        assert typed.zones["lawn"].open
        assert typed.zones["lawn"].ends_at is not None
        assert typed.rain_delay_until is not None
        assert typed.queue == (sprinklers.QueuedRun(zone="beds", seconds=600.0),)
        assert light.LightState.from_wire(agent.app.devices["porch"].state()).effect == "pulse"
        assert frame.FrameState.from_wire(agent.app.devices["frame"].state()).current == "a.jpg"


async def test_every_typed_params_object_passes_the_real_agents_schema(
    agent_factory: AgentFactory,
) -> None:
    async with agent_factory(EVERY_KIND) as agent:
        kinds = {device.kind: device for device in agent.app.devices.values()}
        for params in PARAMS:
            kind = next(
                contract.kind
                for contract in CONTRACTS.values()
                if params.action in set(contract.actions)
                and type(params).__module__.endswith(_module_of(contract.actions))
            )
            action = kinds[kind].actions()[params.action]
            wire = params.to_wire()
            if isinstance(params, frame.PutPicture):
                wire["data"] = b"..."  # the payload of the binary frame
            action.schema(wire)  # raises vol.Invalid when the contract and the agent disagree
        for contract in CONTRACTS.values():
            assert set(kinds[contract.kind].actions()) == {a.value for a in contract.actions}


def _module_of(actions: type[StrEnum]) -> str:
    return actions.__module__.rpartition(".")[2]


MOMENT = datetime(2026, 6, 1, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-01T05:30:00+00:00", MOMENT),
        ("2026-06-01T05:30:00.000+00:00", MOMENT),
        ("2026-06-01T05:30:00Z", MOMENT),
        ("2026-06-01T07:30:00+02:00", MOMENT),
        # The agent writes the offset; a time without one is read as UTC, not as local time.
        ("2026-06-01T05:30:00", MOMENT),
        (None, None),
    ],
)
def test_moments_are_read_with_their_zone(text: str | None, expected: datetime | None) -> None:
    wire = {**SAMPLES[sprinklers.SprinklerState][1], "rain_delay_until": text}
    until = sprinklers.SprinklerState.from_wire(wire).rain_delay_until
    assert until == expected
    if until is not None:
        assert until.tzinfo is not None
    if text is not None and text.endswith("+02:00"):
        assert until is not None
        assert until.utcoffset() == timedelta(hours=2)  # kept as it was given


@pytest.mark.parametrize("value", [True, 1780000000, 1e300, "tomorrow", [2026, 6, 1], {}])
def test_what_is_not_a_moment_is_refused(value: object) -> None:
    wire = {**SAMPLES[sprinklers.SprinklerState][1], "rain_delay_until": value}
    with pytest.raises(ProtocolError, match="rain_delay_until"):
        sprinklers.SprinklerState.from_wire(wire)


# ---- the client decodes at the edge; one bad device does not take the others away ---------------


async def test_a_malformed_device_is_unusable_and_the_others_go_on(
    agent_factory: AgentFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with agent_factory(EVERY_KIND) as agent:
        porch, relay = agent.app.devices["porch"], agent.app.devices["relay"]
        good_state = relay.state
        porch.capabilities = lambda: {"dimmable": "yes", "supports_transition": True}  # type: ignore[method-assign]
        relay.state = lambda: {"on": "no", "effect": None}  # type: ignore[method-assign]
        caplog.set_level(logging.INFO, logger="pi_secure_ws_protocol")
        client = await agent.connected_client()
        events: list[StateChanged] = []
        client.add_listener(lambda e: events.append(e) if isinstance(e, StateChanged) else None)
        hello = client.hello
        assert hello is not None

        # Bad capabilities: no device at all. A bad state: the device, without a state.
        assert "porch" not in hello.devices
        assert "porch" not in hello.states
        assert "light capabilities.dimmable: expected a boolean" in hello.unusable["porch"]
        assert isinstance(hello.devices["relay"].capabilities, light.LightCapabilities)
        assert "relay" not in hello.states
        assert "light state.on: expected a boolean" in hello.unusable["relay"]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2
        assert all("unusable, the others go on" in text for text in warnings)

        # The session goes on for everything else.
        assert isinstance(hello.states["sprinklers"], sprinklers.SprinklerState)
        await client.call("sprinklers", "run", {"zone": "lawn", "seconds": 30})
        states = await client.get_states()
        assert "relay" not in states
        assert isinstance(states["sprinklers"], sprinklers.SprinklerState)
        assert states["sprinklers"].zones["lawn"].open

        # The device sends a readable state again: usable again, said once.
        relay.state = good_state  # type: ignore[method-assign]
        await client.call("relay", "turn_on")
        await _until(lambda: isinstance(client.states.get("relay"), light.LightState))
        assert any(e.device == "relay" and isinstance(e.state, light.LightState) for e in events)
        assert "readable again" in caplog.text

        # Bad pushes: the state is dropped (its entities go unavailable), one warning for many.
        caplog.clear()
        relay.state = lambda: {"on": True, "effect": 7}  # type: ignore[method-assign]
        events.clear()
        for action in ("turn_off", "turn_on", "toggle", "toggle"):
            await client.call("relay", action)
        await _until(lambda: len([e for e in events if e.device == "relay"]) >= 1)
        assert "relay" not in client.states
        assert all(e.state is None for e in events if e.device == "relay")
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert "light state.effect: expected a string or null, got a number 7" in warnings[0]
        assert client.connected
        await client.ping()


async def _until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not predicate():
            await asyncio.sleep(0.01)


def test_the_decoder_ignores_states_of_devices_the_hello_did_not_describe(
    caplog: pytest.LogCaptureFixture,
) -> None:
    decoder = DeviceDecoder()
    devices = decoder.devices(
        [
            {
                "id": "porch",
                "kind": "light",
                "name": "Porch",
                "capabilities": SAMPLES[light.LightCapabilities][0],
            }
        ]
    )
    assert devices["porch"].to_wire()["capabilities"] == SAMPLES[light.LightCapabilities][0]
    with caplog.at_level(logging.DEBUG):
        assert decoder.state("ghost", {"on": True}) is None
    assert "ghost" in caplog.text
    assert decoder.unusable == {}
    assert decoder.states({"porch": {"on": False, "effect": None}, "ghost": {}}) == {
        "porch": light.LightState(on=False, effect=None)
    }
    # A device unusable in one hello and gone from the next is forgotten.
    decoder.devices([{"id": "x", "kind": "light", "name": "X", "capabilities": {}}])
    assert set(decoder.unusable) == {"x"}
    decoder.devices([])
    assert decoder.unusable == {}
