"""The decoder refuses numbers no handler can use: non-finite, overflowing, huge, and fake versions.

Property-based: whatever number literal sits anywhere in a message, decoding either refuses it
with ProtocolError or returns only finite floats and integers within +-(2**53 - 1).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pi_secure_ws_protocol import messages as m
from pi_secure_ws_protocol.errors import ProtocolError

MAX_ID = 2**53 - 1

# Number literals as a hostile peer writes them: overflowing exponents, long digit strings.
number_literals = st.one_of(
    st.integers().map(str),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(
        lambda mantissa, exponent: f"{mantissa}e{exponent}",
        st.integers(min_value=-99, max_value=99),
        st.integers(min_value=-999, max_value=999),
    ),
    st.text("0123456789", min_size=1, max_size=400),
)


def _numbers(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [value]
    return []


def _check(decoded: dict[str, Any]) -> None:
    for number in _numbers(decoded):
        if isinstance(number, float):
            assert math.isfinite(number)
        else:
            assert abs(number) <= MAX_ID


@settings(max_examples=400)
@given(literal=number_literals, where=st.sampled_from(["id", "param", "nested", "v"]))
def test_any_number_literal_is_refused_or_finite_and_bounded(literal: str, where: str) -> None:
    if where == "id":
        text = f'{{"v":1,"type":"ping","id":{literal}}}'
    elif where == "v":
        text = f'{{"v":{literal},"type":"ping","id":1}}'
    elif where == "param":
        text = (
            f'{{"v":1,"type":"call","id":1,"device":"d","action":"a","params":{{"x":{literal}}}}}'
        )
    else:
        text = (
            f'{{"v":1,"type":"call","id":1,"device":"d","action":"a","params":{{"x":[{literal}]}}}}'
        )
    try:
        decoded = m.decode(text, m.CLIENT_SCHEMAS)
    except ProtocolError as err:
        assert str(err)
        return
    _check(decoded)
    if where == "v":
        assert decoded["v"] == 1 and type(decoded["v"]) is int


@pytest.mark.parametrize(
    "literal", ["1e400", "-1e400", "1E999", "9" * 400, str(2**53), "-" + "9" * 17]
)
def test_overflowing_numbers_are_invalid_messages(literal: str) -> None:
    text = f'{{"v":1,"type":"call","id":1,"device":"d","action":"a","params":{{"x":{literal}}}}}'
    with pytest.raises(ProtocolError, match="not valid JSON"):
        m.decode(text, m.CLIENT_SCHEMAS)


@pytest.mark.parametrize("version", ["true", "1.0", "1e0", '"1"', "false", "null"])
def test_only_the_integer_1_is_version_1(version: str) -> None:
    with pytest.raises(ProtocolError, match="unsupported protocol version"):
        m.decode(f'{{"v":{version},"type":"ping","id":1}}', m.CLIENT_SCHEMAS)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_constants_are_refused(constant: str) -> None:
    with pytest.raises(ProtocolError, match="not valid JSON"):
        m.decode(f'{{"v":1,"type":"ping","id":{constant}}}', m.CLIENT_SCHEMAS)


def test_the_largest_exact_integer_still_passes() -> None:
    decoded = m.decode(f'{{"v":1,"type":"ping","id":{MAX_ID}}}', m.CLIENT_SCHEMAS)
    assert decoded["id"] == MAX_ID
    assert m.decode('{"v":1,"type":"ping","id":-0}', m.CLIENT_SCHEMAS)["id"] == 0
