"""The JSON message envelope and a voluptuous schema for every message type.

Every text frame is one JSON object ``{"v": 1, "type": ..., ...}``. Decoding never raises anything
but :class:`ProtocolError`, whose text says what was wrong, so a peer can answer bad input with an
error instead of a traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

import voluptuous as vol

from . import const
from .const import PROTOCOL_VERSION
from .errors import ProtocolError

# Message types, before login.
AUTH_START: Final = "auth_start"  # agent -> client: mechanisms and the CA certificate (PEM)
AUTH_CLIENT_FIRST: Final = "auth_client_first"  # client -> agent
AUTH_SERVER_FIRST: Final = "auth_server_first"  # agent -> client
AUTH_CLIENT_FINAL: Final = "auth_client_final"  # client -> agent
AUTH_SERVER_FINAL: Final = "auth_server_final"  # agent -> client: the agent's proof
AUTH_FAILED: Final = "auth_failed"  # agent -> client, then the agent closes
# After login, agent -> client.
HELLO: Final = "hello"
RESULT: Final = "result"
ERROR: Final = "error"
STATE: Final = "state"
STREAM_END: Final = "stream_end"  # a stream the device ended (not one the client stopped)
# After login, client -> agent; each carries an "id" and gets exactly one result or error.
CALL: Final = "call"
GET_STATES: Final = "get_states"
STREAM_STOP: Final = "stream_stop"
PING: Final = "ping"

# Error codes in "error" messages (defined in const.py, where errors.classify reads them too)
# and "auth_failed" reasons.
ERR_INVALID_MESSAGE: Final = const.ERR_INVALID_MESSAGE
ERR_UNKNOWN_TYPE: Final = const.ERR_UNKNOWN_TYPE
ERR_UNKNOWN_DEVICE: Final = const.ERR_UNKNOWN_DEVICE
ERR_UNKNOWN_ACTION: Final = const.ERR_UNKNOWN_ACTION
ERR_INVALID_PARAMS: Final = const.ERR_INVALID_PARAMS
ERR_FORBIDDEN: Final = const.ERR_FORBIDDEN
ERR_DEVICE_ERROR: Final = const.ERR_DEVICE_ERROR
ERR_REFUSED: Final = const.ERR_REFUSED
ERR_RATE_LIMITED: Final = const.ERR_RATE_LIMITED
ERR_INTERNAL: Final = const.ERR_INTERNAL
ERR_UNKNOWN_STREAM: Final = const.ERR_UNKNOWN_STREAM
REASON_INVALID_AUTH: Final = "invalid_auth"
REASON_BLOCKED: Final = "blocked"
REASON_PROTOCOL: Final = "protocol_error"
REASON_TIMEOUT: Final = "timeout"


_MAX_ID: Final = 2**53 - 1  # the largest integer every JSON implementation keeps exact


def _request_id(value: Any) -> int:
    # One check, not vol.All(int, Range): every message carries an id. JSON true/false are not
    # ids, though Python counts bool as int.
    if type(value) is not int:
        raise vol.Invalid("expected an integer")
    if not 0 <= value <= _MAX_ID:
        raise vol.Invalid(f"value must be between 0 and {_MAX_ID}")
    return value


_ID = _request_id
_NAME = vol.All(str, vol.Length(min=1, max=64))
_SCRAM_MESSAGE = vol.All(str, vol.Length(min=1, max=2048))


def _envelope(type_: str, fields: Mapping[Any, Any], *, extra: int) -> vol.Schema:
    # Every key is required unless marked Optional. Plain string keys, not vol.Required markers:
    # those compare in Python, which made validation twice as slow.
    return vol.Schema({"v": PROTOCOL_VERSION, "type": type_, **fields}, required=True, extra=extra)


# What the agent accepts from a client. Unknown keys are refused: a forged or garbled message is
# an error, not something to guess about.
_STRICT = vol.PREVENT_EXTRA
CLIENT_PRELOGIN_SCHEMAS: Final[dict[str, vol.Schema]] = {
    AUTH_CLIENT_FIRST: _envelope(
        AUTH_CLIENT_FIRST,
        {"mechanism": _NAME, "message": _SCRAM_MESSAGE},
        extra=_STRICT,
    ),
    AUTH_CLIENT_FINAL: _envelope(AUTH_CLIENT_FINAL, {"message": _SCRAM_MESSAGE}, extra=_STRICT),
}
CLIENT_SCHEMAS: Final[dict[str, vol.Schema]] = {
    CALL: _envelope(
        CALL,
        {
            "id": _ID,
            "device": _NAME,
            "action": _NAME,
            vol.Optional("params", default=dict): dict,
        },
        extra=_STRICT,
    ),
    GET_STATES: _envelope(GET_STATES, {"id": _ID}, extra=_STRICT),
    STREAM_STOP: _envelope(STREAM_STOP, {"id": _ID, "stream": _ID}, extra=_STRICT),
    PING: _envelope(PING, {"id": _ID}, extra=_STRICT),
}

# What a client accepts from the agent. Extra keys are ignored so a newer agent can add fields.
_LENIENT = vol.ALLOW_EXTRA
_DEVICE = vol.Schema(
    {"id": str, "kind": str, "name": str, "capabilities": dict}, required=True, extra=_LENIENT
)
AGENT_PRELOGIN_SCHEMAS: Final[dict[str, vol.Schema]] = {
    AUTH_START: _envelope(
        AUTH_START,
        {"mechanisms": [str], "ca": str},
        extra=_LENIENT,
    ),
    AUTH_SERVER_FIRST: _envelope(AUTH_SERVER_FIRST, {"message": str}, extra=_LENIENT),
    AUTH_SERVER_FINAL: _envelope(AUTH_SERVER_FINAL, {"message": str}, extra=_LENIENT),
    AUTH_FAILED: _envelope(
        AUTH_FAILED,
        {
            "reason": str,
            vol.Optional("retry_after"): vol.Any(None, vol.Coerce(float)),
        },
        extra=_LENIENT,
    ),
}
AGENT_SCHEMAS: Final[dict[str, vol.Schema]] = {
    HELLO: _envelope(
        HELLO,
        {
            "agent": vol.Schema(
                {"id": str, "name": str, "version": str}, required=True, extra=_LENIENT
            ),
            "session": vol.Schema({"client_id": str, "role": str}, required=True, extra=_LENIENT),
            "devices": [_DEVICE],
            # Its own Schema: a nested literal would inherit required=True and demand a key.
            "states": vol.Schema({str: dict}),
        },
        extra=_LENIENT,
    ),
    RESULT: _envelope(RESULT, {"id": _ID, vol.Optional("data"): object}, extra=_LENIENT),
    ERROR: _envelope(
        ERROR,
        {
            "id": vol.Any(None, _ID),
            "code": str,
            "message": str,
        },
        extra=_LENIENT,
    ),
    STATE: _envelope(STATE, {"device": str, "state": dict}, extra=_LENIENT),
    STREAM_END: _envelope(STREAM_END, {"stream": _ID, "reason": str}, extra=_LENIENT),
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # 1e400 parses as infinity, which no handler expects and no encoder can send back.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


_MAX_INT_DIGITS: Final = len(str(_MAX_ID))


def _bounded_int(text: str) -> int:
    # Checked on the text first: converting a 4,000-digit literal costs quadratic time.
    if len(text.lstrip("-")) > _MAX_INT_DIGITS or abs(value := int(text)) > _MAX_ID:
        raise ValueError(f"integer {text[:40]} is beyond +-{_MAX_ID}")
    return value


# One of each, made once: json.dumps and json.loads build a new one per call when given options.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int
)


def encode(type_: str, **fields: Any) -> str:
    """Encode one message. NaN and infinities are refused: they are not JSON."""
    return _ENCODER.encode({"v": PROTOCOL_VERSION, "type": type_, **fields})


def parse_json(text: str | bytes) -> dict[str, Any]:
    """Parse one JSON object or raise ProtocolError."""
    try:
        value = _DECODER.decode(text.decode() if isinstance(text, bytes) else text)
    except (ValueError, RecursionError, UnicodeDecodeError) as err:
        raise ProtocolError(f"not valid JSON: {_short(err)}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"a message must be a JSON object, not {type(value).__name__}")
    return value


def decode(
    text: str | bytes, schemas: Mapping[str, vol.Schema], *, what: str = "message"
) -> dict[str, Any]:
    """Parse and validate one message against the schema of its type.

    Raises ProtocolError naming the problem; the returned dict has defaults filled in.
    """
    value = parse_json(text)
    return validate(value, schemas, what=what)


def validate(
    value: dict[str, Any], schemas: Mapping[str, vol.Schema], *, what: str = "message"
) -> dict[str, Any]:
    version = value.get("v")
    # type() first: JSON true and 1.0 compare equal to 1 in Python, and are not version 1.
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {_short(version)} (expected 1)")
    type_ = value.get("type")
    schema = schemas.get(type_) if isinstance(type_, str) else None
    if schema is None:
        raise UnknownMessageType(f"unknown {what} type {_short(type_)}")
    try:
        result: dict[str, Any] = schema(value)
    except vol.Invalid as err:
        raise ProtocolError(f"invalid {type_} {what}: {humanize(err)}") from None
    return result


class UnknownMessageType(ProtocolError):
    """A well-formed message of a type this side does not know."""


# Our own words for each kind of validation error, by the name of the error's class. The library
# behind `import voluptuous` (voluptuous itself on the agent, probatio in Home Assistant 2026.9+)
# words the same errors differently, and a peer's error text must not change with it.
_PROBLEMS: Final = {
    "RequiredFieldInvalid": "is required",
    "ExtraKeysInvalid": "is not an allowed key",
    "DictInvalid": "must be an object",
    "SequenceTypeInvalid": "must be a list",
    "ExactSequenceInvalid": "must be a list",
    "BooleanInvalid": "must be true or false",
    "TypeInvalid": "has the wrong type",
    "CoerceInvalid": "has the wrong type",
    "RangeInvalid": "is out of range",
    "LengthInvalid": "has the wrong length",
    "InInvalid": "is not one of the allowed values",
    "EnumInvalid": "is not one of the allowed values",
    "NotInInvalid": "is not one of the allowed values",
    "MatchInvalid": "has the wrong format",
    "DatetimeInvalid": "has the wrong format",
    "ScalarInvalid": "has the wrong value",
    "LiteralInvalid": "has the wrong value",
    "ValueInvalid": "has the wrong value",
}
# voluptuous reports an unknown key with a plain Invalid and this text (probatio's has its class).
_VOLUPTUOUS_EXTRA_KEY: Final = "extra keys not allowed"


def humanize(err: vol.Invalid) -> str:
    """Name the key and the problem, like ``params.seconds: is out of range``.

    The wording is ours, from each error's path and kind. A plain ``vol.Invalid`` is what our own
    validators (and the devices') raise, and keeps their text.
    """
    errors = err.errors if isinstance(err, vol.MultipleInvalid) else [err]
    parts = []
    for one in errors:
        path = ".".join(str(p) for p in one.path) or "message"
        parts.append(f"{path}: {_problem(one)}")
    return "; ".join(parts)


def _problem(err: vol.Invalid) -> str:
    for kind in type(err).__mro__:
        if kind.__name__ in _PROBLEMS:
            return _PROBLEMS[kind.__name__]
    if type(err).__name__ != "Invalid":
        return "is not valid"  # a kind of error this table does not know yet
    if err.error_message == _VOLUPTUOUS_EXTRA_KEY:
        return _PROBLEMS["ExtraKeysInvalid"]
    return err.error_message


def _short(value: object, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


Validator = Callable[[Any], Any]
