"""Frame-size limits by message kind, applied by the WebSocket layer before a frame is buffered.

websockets has one ``max_size`` for every message. Before login that is the small pre-login cap;
after it, JSON (text) stays small for everyone while binary frames, the only way a picture
travels, may be as big as an upload only for roles that may upload. The kind is read from the
first byte of the next frame's header, which websockets has in its buffer when it computes the
limit for that frame: a 16 MiB text frame is refused from its header, not after arriving.

websockets 16 and 17 read the limit as ``max_message_size`` and the message so far as
``current_size``; 15 names them ``max_size`` and ``cur_size``. Both names are served here
(checked by running tests/agent/test_hostile.py and test_limits.py on 15.0.1, 16.0 and 17.4).
"""

from __future__ import annotations

from typing import Any

from websockets.server import ServerProtocol

OP_CONTINUATION, OP_TEXT, OP_BINARY = 0, 1, 2


class SizedServerProtocol(ServerProtocol):
    """A ServerProtocol whose ``max_message_size`` depends on the kind of the message read."""

    _text_limit: int | None
    _binary_limit: int | None
    _message_opcode: int = OP_TEXT

    @classmethod
    def adopt(cls, protocol: ServerProtocol) -> SizedServerProtocol:
        """Give ``protocol`` (made by websockets) this class; its limit so far holds for both."""
        # Whichever name this websockets stored the limit under (see the module docstring).
        limit = protocol.__dict__.pop("max_message_size", None)
        limit = protocol.__dict__.pop("max_size", limit)
        protocol.__class__ = cls
        assert isinstance(protocol, SizedServerProtocol)
        protocol._text_limit = protocol._binary_limit = limit
        return protocol

    def set_limits(self, text: int | None, binary: int | None) -> None:
        self._text_limit, self._binary_limit = text, binary

    @property
    def max_message_size(self) -> int | None:
        # The bytes of the message read so far: None between messages (16+: current_size, 15:
        # cur_size). The next frame then starts a message, and its first byte says what kind.
        state = self.__dict__
        if state.get("current_size", state.get("cur_size")) is None:
            buffer = self.reader.buffer
            opcode = buffer[0] & 0x0F if buffer else OP_CONTINUATION
            if opcode in (OP_TEXT, OP_BINARY):
                self._message_opcode = opcode
        return self._binary_limit if self._message_opcode == OP_BINARY else self._text_limit

    @max_message_size.setter
    def max_message_size(self, value: Any) -> None:
        self._text_limit = self._binary_limit = value

    # websockets 15 reads and writes the limit under this name.
    @property
    def max_size(self) -> int | None:
        return self.max_message_size

    @max_size.setter
    def max_size(self, value: Any) -> None:
        self.max_message_size = value
