"""Dispatch without sockets: whatever a handler or a parameter does, one request, one answer.

The device here is a test double on purpose: it misbehaves in ways no real device should, which is
what the dispatcher must survive. The same promise is tried against the real devices through the
real agent in test_hostile.py.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

import pytest
import voluptuous as vol
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.const import Role

from pi_agent.devices.base import Action, CallContext, Device, DeviceError, Refused
from pi_agent.server.dispatch import (
    Failure,
    Principal,
    Request,
    Result,
    dispatch,
    encode_answer,
    parse_request,
)
from pi_agent.server.logs import ThrottledLog


async def _raises(params: dict[str, Any], call: CallContext) -> dict[str, Any]:
    raise RuntimeError("a bug")


async def _nan(params: dict[str, Any], call: CallContext) -> dict[str, Any]:
    return {"value": math.nan}


async def _unencodable(params: dict[str, Any], call: CallContext) -> dict[str, Any]:
    return {"value": {1, 2}}


async def _refuses(params: dict[str, Any], call: CallContext) -> dict[str, Any]:
    raise Refused("no")


async def _fails(params: dict[str, Any], call: CallContext) -> dict[str, Any]:
    raise DeviceError("stuck relay")


async def _echo(params: dict[str, Any], call: CallContext) -> dict[str, Any]:
    return dict(params)


def _overflowing_schema(value: Any) -> Any:
    return int(float("inf"))  # OverflowError: not a vol.Invalid


class Misbehaving(Device):
    kind = "test"

    def capabilities(self) -> dict[str, Any]:
        return {}

    def state(self) -> dict[str, Any]:
        raise RuntimeError("state() is broken")

    def actions(self) -> Mapping[str, Action]:
        return {
            "raises": Action("raises", _raises),
            "nan": Action("nan", _nan),
            "unencodable": Action("unencodable", _unencodable),
            "refuses": Action("refuses", _refuses),
            "fails": Action("fails", _fails),
            "overflows": Action("overflows", _echo, _overflowing_schema),
            "echo": Action("echo", _echo, vol.Schema({"n": vol.Coerce(int)})),
            "admin_only": Action("admin_only", _echo, role=Role.ADMIN),
        }


class NoStreams:
    def stop(self, stream_id: int) -> bool:
        return False


DEVICES = {"d": Misbehaving("d", "Misbehaving")}
PRINCIPAL = Principal("homeassistant", Role.CONTROL, "127.0.0.1")


def _call(action: str, params: dict[str, Any] | None = None) -> Request:
    message = {"v": 1, "type": m.CALL, "id": 7, "device": "d", "action": action}
    message["params"] = params or {}
    return Request(7, message)


async def _answer(request: Request) -> dict[str, Any]:
    log = ThrottledLog(logging.getLogger("dispatch-test"))
    answer = await dispatch(DEVICES, PRINCIPAL, request, NoStreams(), log)
    assert isinstance(answer, Result | Failure)
    frame = encode_answer(request.id, answer)
    assert isinstance(frame, str)
    decoded: dict[str, Any] = json.loads(frame)
    return decoded


@pytest.mark.parametrize(
    ("action", "code"),
    [
        ("raises", m.ERR_INTERNAL),
        ("nan", m.ERR_INTERNAL),
        ("unencodable", m.ERR_INTERNAL),
        ("overflows", m.ERR_INTERNAL),
        ("refuses", m.ERR_REFUSED),
        ("fails", m.ERR_DEVICE_ERROR),
        ("admin_only", m.ERR_FORBIDDEN),
        ("nothing", m.ERR_UNKNOWN_ACTION),
    ],
)
async def test_every_misbehaviour_is_one_error_with_the_id(action: str, code: str) -> None:
    reply = await _answer(_call(action))
    assert reply["type"] == m.ERROR
    assert reply["id"] == 7
    assert reply["code"] == code


async def test_a_broken_state_is_one_internal_error() -> None:
    reply = await _answer(Request(3, {"v": 1, "type": m.GET_STATES, "id": 3}))
    assert (reply["id"], reply["code"]) == (3, m.ERR_INTERNAL)


async def test_tracebacks_stay_within_the_log_budget(caplog: pytest.LogCaptureFixture) -> None:
    log = ThrottledLog(logging.getLogger("dispatch-test"), burst=3, per_second=0.01)
    for _ in range(100):
        await dispatch(DEVICES, PRINCIPAL, _call("raises"), NoStreams(), log)
    assert len([r for r in caplog.records if r.exc_info]) == 3


async def test_parameters_are_validated_and_echoed() -> None:
    reply = await _answer(_call("echo", {"n": "12"}))
    assert reply == {"v": 1, "type": m.RESULT, "id": 7, "data": {"n": 12}}
    reply = await _answer(_call("echo", {"n": "x"}))
    assert reply["code"] == m.ERR_INVALID_PARAMS


@pytest.mark.parametrize(
    ("frame", "request_id", "code"),
    [
        ('{"v":1,"type":"ping","id":4,"x":1e400}', 4, m.ERR_INVALID_MESSAGE),
        ('{"v":true,"type":"ping","id":4}', 4, m.ERR_INVALID_MESSAGE),
        ('{"v":1,"type":"launch","id":4}', 4, m.ERR_UNKNOWN_TYPE),
        ("not json", None, m.ERR_INVALID_MESSAGE),
        (b"\x00", None, m.ERR_INVALID_MESSAGE),
    ],
)
def test_frames_that_do_not_parse_keep_their_id_when_it_can_be_read(
    frame: str | bytes, request_id: int | None, code: str
) -> None:
    found, parsed = parse_request(frame, 65536)
    assert found == request_id
    assert isinstance(parsed, Failure)
    assert parsed.code == code
