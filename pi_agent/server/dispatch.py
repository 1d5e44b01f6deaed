"""From a logged-in principal and one request to exactly one answer: no sockets here.

:func:`parse_request` turns a frame into a request or an error answer; :func:`dispatch` runs it
against the devices and returns one :data:`Answer` whatever a handler or a parameter does (an
escaped exception becomes one ``internal_error``); :func:`encode_answer` makes the frame, and an
answer that cannot be encoded becomes an ``internal_error`` too. Streams are started by the session
(they outlive the request), which passes a :class:`StreamControl` for ``stream_stop``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import voluptuous as vol
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.binary import decode_frame, encode_frame
from pi_secure_ws_protocol.const import Role
from pi_secure_ws_protocol.errors import ProtocolError

from pi_agent.devices.base import (
    BinaryResult,
    CallContext,
    Device,
    DeviceError,
    Refused,
    StreamResult,
)

from .logs import ThrottledLog, TokenBucket

_LOGGER = logging.getLogger(__name__)
INTERNAL = "the agent hit an internal error"


@dataclass(frozen=True)
class Principal:
    """Who a session speaks for, fixed at login."""

    client_id: str
    role: Role
    source: str

    @property
    def context(self) -> CallContext:
        return CallContext(client_id=self.client_id, role=self.role, source=self.source)


@dataclass(frozen=True)
class Request:
    id: int
    message: dict[str, Any]
    payload: bytes | None = None

    @property
    def is_call(self) -> bool:
        return bool(self.message["type"] == m.CALL)


@dataclass(frozen=True)
class Result:
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


Answer = Result | Failure | BinaryResult | StreamResult


class StreamControl(Protocol):
    def stop(self, stream_id: int) -> bool: ...


_ID_PEEK = re.compile(rb'"id"\s*:\s*(\d{1,16})[,}\s]')


def peek_request_id(frame: str | bytes) -> int | None:
    """The id of a message that will not be parsed (over the rate), from its first bytes only."""
    head = frame[:160] if isinstance(frame, bytes) else frame[:160].encode("utf-8", "replace")
    match = _ID_PEEK.search(head)
    return int(match.group(1)) if match else None


def parse_request(frame: str | bytes, text_limit: int) -> tuple[int | None, Request | Failure]:
    """Decode one frame: its request id (when one could be read) and the request or an error."""
    request_id: int | None = None
    try:
        payload: bytes | None = None
        if isinstance(frame, bytes):
            header, payload = decode_frame(frame)
        else:
            if len(frame) > text_limit:
                # The WebSocket layer enforces this before buffering; kept for direct callers.
                raise ProtocolError(f"text message over {text_limit} bytes")
            header = m.parse_json(frame)
        request_id = _request_id(header)
        message = m.validate(header, m.CLIENT_SCHEMAS)
    except m.UnknownMessageType as err:
        return request_id, Failure(m.ERR_UNKNOWN_TYPE, str(err))
    except ProtocolError as err:
        # JSON that does not parse (1e400) may still name its id in its first bytes: the
        # sender gets its answer instead of a timeout.
        if request_id is None:
            request_id = peek_request_id(frame)
        return request_id, Failure(m.ERR_INVALID_MESSAGE, str(err))
    return message["id"], Request(message["id"], message, payload)


async def dispatch(
    devices: Mapping[str, Device],
    principal: Principal,
    request: Request,
    streams: StreamControl,
    log: ThrottledLog,
    *,
    costly: TokenBucket | None = None,
) -> Answer:
    """Exactly one answer to ``request``; never raises (but CancelledError).

    ``costly`` is the client's budget for calls that decode, encode or start a pipeline: one over
    it is answered ``rate_limited`` before its handler runs.
    """
    try:
        return await _answer(devices, principal, request, streams, costly)
    except Exception:
        # Logged with its traceback, within the log budget: a handler that fails on every call
        # must not write a traceback per call.
        log.log(
            logging.ERROR,
            "internal error on %s from client %s",
            _what(request),
            principal.client_id,
            source=principal.source,
            exc_info=True,
        )
        return Failure(m.ERR_INTERNAL, INTERNAL)


async def _answer(
    devices: Mapping[str, Device],
    principal: Principal,
    request: Request,
    streams: StreamControl,
    costly: TokenBucket | None,
) -> Answer:
    message = request.message
    type_ = message["type"]
    if type_ == m.PING:
        return Result({})
    if type_ == m.GET_STATES:
        return Result({"states": {d.id: d.state() for d in devices.values()}})
    if type_ == m.STREAM_STOP:
        if not streams.stop(message["stream"]):
            return Failure(m.ERR_UNKNOWN_STREAM, "no such stream")
        return Result({})
    return await _call(devices, principal, message, request.payload, costly)


async def _call(
    devices: Mapping[str, Device],
    principal: Principal,
    message: dict[str, Any],
    payload: bytes | None,
    costly: TokenBucket | None,
) -> Answer:
    device = devices.get(message["device"])
    if device is None:
        return Failure(m.ERR_UNKNOWN_DEVICE, f"no device {message['device']!r}")
    action = device.actions().get(message["action"])
    if action is None:
        return Failure(
            m.ERR_UNKNOWN_ACTION,
            f"{device.id} has no action {message['action']!r}; "
            f"it has: {', '.join(sorted(device.actions()))}",
        )
    if principal.role < action.role:
        _LOGGER.warning(
            "forbidden: client %s (%s) from %s asked %s.%s, which needs %s",
            principal.client_id,
            principal.role.label,
            principal.source,
            device.id,
            action.name,
            action.role.label,
        )
        return Failure(
            m.ERR_FORBIDDEN,
            f"{device.id}.{action.name} needs the {action.role.label} role; "
            f"this client is {principal.role.label}",
        )
    if action.costly and costly is not None and not costly.take():
        return Failure(
            m.ERR_RATE_LIMITED,
            f"{device.id}.{action.name} decodes or starts a pipeline: this client may make "
            f"{costly.rate:g} such calls a second (bursts of {costly.burst:g})",
        )
    params = dict(message["params"])
    if payload is not None:
        params["data"] = payload
    try:
        params = action.schema(params)
        result = await action.handler(params, principal.context)
    except Refused as err:
        return Failure(m.ERR_REFUSED, str(err))
    except vol.Invalid as err:
        return Failure(m.ERR_INVALID_PARAMS, m.humanize(err))
    except DeviceError as err:
        _LOGGER.error("device %s failed on %s: %s", device.id, action.name, err)
        return Failure(m.ERR_DEVICE_ERROR, str(err))
    if isinstance(result, BinaryResult | StreamResult):
        return result
    return Result(dict(result) if isinstance(result, Mapping) else {})


def encode_answer(request_id: int | None, answer: Result | Failure | BinaryResult) -> str | bytes:
    """The frame for an answer; one that cannot be encoded (NaN, a set) is an internal error."""
    try:
        if isinstance(answer, Result):
            return m.encode(m.RESULT, id=request_id, data=dict(answer.data))
        if isinstance(answer, BinaryResult):
            header = {"id": request_id, "content_type": answer.content_type, **dict(answer.meta)}
            return encode_frame(header, answer.data)
        return m.encode(m.ERROR, id=request_id, code=answer.code, message=answer.message)
    except (ValueError, TypeError, OverflowError) as err:
        _LOGGER.error("answer to request %s could not be encoded: %s", request_id, err)
        return m.encode(m.ERROR, id=request_id, code=m.ERR_INTERNAL, message=INTERNAL)


def _request_id(value: Mapping[str, Any]) -> int | None:
    request_id = value.get("id")
    if type(request_id) is int and 0 <= request_id <= 2**53 - 1:
        return request_id
    return None


def _what(request: Request) -> str:
    message = request.message
    if message["type"] == m.CALL:
        return f"{str(message['device'])[:64]}.{str(message['action'])[:64]}"
    return str(message["type"])
