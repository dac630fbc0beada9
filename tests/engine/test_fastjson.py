"""engine.fastjson.loads gives what json.loads gives, for every text: values, types, errors."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.fastjson import loads


def same(a: object, b: object) -> bool:
    """Equal values of equal types all the way down (NaN equals NaN; key order counts)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))  # type: ignore[arg-type]
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)  # type: ignore[index]
    return a == b


def outcome(fn, text: str) -> tuple[str, object]:
    try:
        return "value", fn(text)
    except (ValueError, RecursionError) as exc:
        return "error", type(exc).__name__


def assert_like_json(text: str) -> None:
    mine, theirs = outcome(loads, text), outcome(json.loads, text)
    assert mine[0] == theirs[0], (text, mine, theirs)
    if mine[0] == "value":
        assert same(mine[1], theirs[1]), (text, mine, theirs)
    else:
        assert mine[1] == theirs[1], (text, mine, theirs)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": NaN, "b": Infinity, "c": -Infinity}',  # what json.dumps writes for an undefined metric
        "[1e400, -1e400]",  # overflows a float: inf
        "[18446744073709551616, -9223372036854775809, 12345678901234567890]",  # beyond 64 bits: ints, not floats
        "[0.1234567890123456789012]",
        '"\\ud800"',  # a lone surrogate
        '"\ud800"',
        '"\\ud83d\\ude00"',
        '{"a": 1, "a": 2}',  # the last duplicate wins
        "[-0.0, 0.0, 5e-324, 1.7976931348623157e308, 1E5, 1e-7]",
        "\ufeff[1]",  # a byte-order mark
        "[1,]",
        "{1: 2}",
        "[.5]",
        "[01]",
        '{"a": 1}\x00',
        '{"a": 1} x',
        "",
        " \t\r\n",
        '"\\u0000"',
        "[" * 5000 + "]" * 5000,  # deeper than json.loads follows
        '{"kind": "candidate_finished", "fitness": 0.9993342177476734, "flops": 20029707392}',
    ],
)
def test_tricky_texts_decode_as_json_loads_decodes_them(text: str) -> None:
    assert_like_json(text)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_any_json_text_decodes_as_json_loads_decodes_it(value: object, ascii_only: bool) -> None:
    assert_like_json(json.dumps(value, ensure_ascii=ascii_only))


@settings(max_examples=300, deadline=None)
@given(json_values, st.data())
def test_a_damaged_json_text_fails_or_decodes_as_json_loads_says(value: object, data: st.DataObject) -> None:
    """Cut, overwritten or padded texts: the same value or the same kind of error."""
    text = json.dumps(value)
    at = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.text(alphabet='0123456789.eE+-"{}[],:nNaIfty \\u\x00', max_size=4))
    assert_like_json(text[:at] + junk + text[at + len(junk):])
