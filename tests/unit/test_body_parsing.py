"""`edges.parse_json` reads bodies with orjson and falls back to the standard parser: together
they must answer exactly as the standard parser alone (values, NaN and Infinity, integers
beyond 64 bits, lone surrogates, errors), and the nesting bound must hold on either path."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.serving.edges import BadBody, has_long_digit_run, parse_json

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                    st.text(), st.sampled_from(["\ud800", "\udfff x", "caf\u00e9"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=20)


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN and the types alike (1 is not 1.0 here)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(VALUES, st.sampled_from(["utf-8", "utf-16"]))
def test_the_fast_parser_reads_what_the_standard_parser_reads(value: Any, encoding: str
                                                              ) -> None:
    try:
        data = json.dumps(value).encode(encoding)
    except UnicodeEncodeError:          # a lone surrogate cannot be UTF-16: nothing to send
        return
    assert same(parse_json(data, 512), json.loads(data))


@pytest.mark.parametrize("data", [b"{", b"[1,]", b"\xff\xfe\x00", b"nul", b""])
def test_what_is_not_json_is_refused_with_the_standard_parsers_words(data: bytes) -> None:
    with pytest.raises(ValueError) as standard:
        json.loads(data)
    with pytest.raises(BadBody) as ours:
        parse_json(data, 32)
    assert str(ours.value) == str(standard.value)[:200]


def test_nesting_is_bounded_whichever_parser_reads_the_body() -> None:
    deep = b"[" * 40 + b"]" * 40
    with pytest.raises(BadBody, match="nested deeper than 32"):
        parse_json(deep, 32)
    with pytest.raises(BadBody, match="nested deeper than 32"):     # NaN: the standard parser
        parse_json(b"[" * 40 + b"NaN" + b"]" * 40, 32)
    records = json.dumps([{"a": 1, "b": "x"}] * 100).encode()      # 101 brackets, depth 2
    assert len(parse_json(records, 2)) == 100
    with pytest.raises(BadBody):
        parse_json(json.dumps([{"a": [1]}] * 3).encode(), 2)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from([b"1", b"0", b"9", b" ", b".", b"e", b"\xd9", b"1" * 18]),
                max_size=60).map(b"".join))
def test_long_digit_runs_are_found_where_a_regex_finds_them(data: bytes) -> None:
    """The byte-table scan that sends a body with a 19-digit run to the standard parser."""
    assert has_long_digit_run(data) == bool(re.search(rb"[0-9]{19}", data))
