"""The protocol's error texts are its own, whichever library sits behind ``import voluptuous``.

voluptuous words its errors one way, probatio (which serves ``import voluptuous`` in Home Assistant
2026.9+) another; a peer reading an ``invalid_params`` error, or a log line, must see the same text
from either. These tests run on every environment of the matrix, probatio's included.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import voluptuous as vol
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.errors import ProtocolError

PROBATIO_ONLY = "probatio comes with Home Assistant 2026.9+ (the sid root)"


def call(**fields: object) -> dict[str, object]:
    return {"v": 1, "type": m.CALL, "id": 1, "device": "zone", "action": "run", **fields}


def problem(value: dict[str, object]) -> str:
    with pytest.raises(ProtocolError) as err:
        m.validate(value, m.CLIENT_SCHEMAS)
    return str(err.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"v": 1, "type": m.CALL, "id": 1, "action": "run"}, "device: is required"),
        (call(colour="red"), "colour: is not an allowed key"),
        (call(device=5), "device: has the wrong type"),
        (call(device=""), "device: has the wrong length"),
        (call(device="x" * 65), "device: has the wrong length"),
        (call(params=[1]), "params: has the wrong type"),
        # Our own validator's words pass through.
        (call(id=True), "id: expected an integer"),
        (call(id=-1), f"id: value must be between 0 and {2**53 - 1}"),
    ],
)
def test_message_errors_in_our_words(value: dict[str, object], text: str) -> None:
    assert problem(value) == f"invalid call message: {text}"


def test_every_problem_is_named() -> None:
    text = problem({"v": 1, "type": m.CALL, "id": 1, "device": 5, "colour": "red"})
    assert text.startswith("invalid call message: ")
    assert sorted(text.removeprefix("invalid call message: ").split("; ")) == [
        "action: is required",
        "colour: is not an allowed key",
        "device: has the wrong type",
    ]


def humanized(schema: vol.Schema, value: object) -> str:
    with pytest.raises(vol.Invalid) as err:
        schema(value)
    return m.humanize(err.value)


def test_device_parameter_errors_in_our_words() -> None:
    """What the agent answers a call whose params a device's schema refuses."""
    schema = vol.Schema(
        {
            vol.Required("seconds"): vol.All(int, vol.Range(min=1, max=3600)),
            vol.Optional("mode"): vol.In(["a", "b"]),
            vol.Optional("on"): vol.Boolean(),
            vol.Optional("options"): {"depth": int},
            vol.Optional("zones"): [int],
        }
    )
    assert humanized(schema, {"seconds": 0}) == "seconds: is out of range"
    assert (
        humanized(schema, {"seconds": 1, "mode": "c"}) == "mode: is not one of the allowed values"
    )
    assert humanized(schema, {"seconds": 1, "on": "perhaps"}) == "on: must be true or false"
    assert humanized(schema, {"seconds": 1, "options": 3}) == "options: must be an object"
    assert humanized(schema, {"seconds": 1, "zones": 3}) == "zones: must be a list"
    assert humanized(schema, {"seconds": 1, "options": {"x": 1}}) == (
        "options.x: is not an allowed key"
    )
    assert humanized(schema, {}) == "seconds: is required"


def test_a_validators_own_words_are_kept() -> None:
    def whole_minutes(value: object) -> object:
        raise vol.Invalid("must be a whole number of minutes, got 1.5")

    schema = vol.Schema({vol.Required("minutes"): whole_minutes})
    assert humanized(schema, {"minutes": 1.5}) == (
        "minutes: must be a whole number of minutes, got 1.5"
    )


class RequiredFieldInvalid(vol.Invalid):
    """As another validation library raises it: its class says the kind, its text differs."""


class LengthInvalid(vol.Invalid):
    pass


class SomethingNewInvalid(vol.Invalid):
    pass


def test_wording_does_not_come_from_the_library() -> None:
    errors = vol.MultipleInvalid(
        [
            RequiredFieldInvalid("Field required", ["device"]),
            LengthInvalid("String should have at most 64 characters", ["action"]),
            SomethingNewInvalid("Input should be a valid frobnicated value", ["params", "x"]),
        ]
    )
    assert m.humanize(errors) == (
        "device: is required; action: has the wrong length; params.x: is not valid"
    )


def test_same_words_under_probatio() -> None:
    """This file's checks again, with probatio serving ``import voluptuous`` as in Home Assistant.

    probatio is present where the newest Home Assistant is installed (the sid root); elsewhere
    there is nothing to compare against.
    """
    pytest.importorskip("probatio.compat", reason=PROBATIO_ONLY)
    script = (
        "import sys\n"
        "from probatio.compat import install_as_voluptuous\n"
        "install_as_voluptuous()\n"
        "import pytest\n"
        f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'no:homeassistant', "
        f"'-k', 'not probatio', {__file__!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout


def test_probatio_really_serves_voluptuous_in_that_run() -> None:
    pytest.importorskip("probatio.compat", reason=PROBATIO_ONLY)
    script = (
        "from probatio.compat import install_as_voluptuous\n"
        "install_as_voluptuous()\n"
        "from pi_secure_ws_protocol import messages\n"
        "print(type(messages.vol.Invalid('x')).__module__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip().startswith("probatio"), result.stdout
