"""Binary frames: JPEG data from cameras and picture frames, and picture uploads.

Layout: a 2-byte big-endian length ``n``, then ``n`` bytes of a UTF-8 JSON header, then the payload.
From the agent the header names the request or stream it answers (``{"id": 7, ...}`` or
``{"stream": 7, "seq": 12, ...}``) and the content type; from a client it is a complete ``call``
message whose payload the agent hands to the action as ``params["data"]``.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from .errors import ProtocolError
from .messages import parse_json

_LENGTH = struct.Struct(">H")
MAX_HEADER = 4096


def encode_frame(header: dict[str, Any], payload: bytes) -> bytes:
    raw = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    if len(raw) > MAX_HEADER:
        raise ValueError("binary frame header too large")
    return _LENGTH.pack(len(raw)) + raw + payload


def decode_frame(frame: bytes) -> tuple[dict[str, Any], bytes]:
    if len(frame) < _LENGTH.size:
        raise ProtocolError("binary frame too short for its header length")
    (length,) = _LENGTH.unpack_from(frame)
    if length > MAX_HEADER or _LENGTH.size + length > len(frame):
        raise ProtocolError("binary frame header length out of range")
    try:
        # The message decoder's own rules: no infinities, no integers beyond 2**53.
        header = parse_json(bytes(frame[_LENGTH.size : _LENGTH.size + length]))
    except ProtocolError as err:
        raise ProtocolError(f"binary frame header: {err}") from None
    return header, bytes(frame[_LENGTH.size + length :])
