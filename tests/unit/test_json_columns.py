"""The prediction log's JSON columns built in Arrow parse to exactly what one `orjson.dumps`
per row wrote (the landing format the warehouse, the board and the served-drift typing read),
whatever the values: floats of any size, NaN and infinities, missing values, 64-bit integers
(orjson, which writes the segments, has no others), booleans, strings with quotes, control
characters and non-ASCII, mixed types."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from models.serving.json_columns import JsonObjectColumn, json_objects, json_values

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(), TEXT, st.none())


def reference(names: list[str], columns: list[Any], rows: int) -> list[str]:
    """The per-row writer this replaced (models/serving/wal.py before the change)."""
    if not names:
        return ["{}"] * rows
    plain = [c.tolist() if isinstance(c, np.ndarray) else c for c in columns]
    return [orjson.dumps(dict(zip(names, values, strict=True)), default=str).decode()
            for values in zip(*plain, strict=True)]


def parsed(texts: list[str]) -> list[list[tuple[str, Any]]]:
    """Keys in order with their values (NaN never reaches JSON: both write null)."""
    return [list(orjson.loads(t).items()) for t in texts]


@st.composite
def columns(draw: st.DrawFn, rows: int | None = None) -> tuple[list[str], list[Any], int]:
    n = rows if rows is not None else draw(st.integers(0, 6))
    names = draw(st.lists(TEXT, min_size=0, max_size=4, unique=True))
    out: list[Any] = []
    for _ in names:
        kind = draw(st.sampled_from(["floats", "ints", "texts", "mixed", "bools"]))
        if kind == "floats":
            out.append(np.array(draw(st.lists(st.floats(), min_size=n, max_size=n)),
                                dtype=float))
        elif kind == "ints":
            out.append(draw(st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1), st.none()),
                                     min_size=n, max_size=n)))
        elif kind == "texts":
            out.append(draw(st.lists(st.one_of(TEXT, st.none()), min_size=n, max_size=n)))
        elif kind == "bools":
            out.append(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        else:
            out.append(draw(st.lists(VALUES, min_size=n, max_size=n)))
    return names, out, n


@settings(max_examples=300, deadline=None)
@given(columns())
def test_objects_parse_as_the_per_row_writer_wrote(case) -> None:
    names, values, rows = case
    texts = json_objects(names, values, rows).to_pylist()
    assert len(texts) == rows
    assert parsed(texts) == parsed(reference(names, values, rows))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5).flatmap(lambda n: columns(rows=n)), max_size=5))
def test_blocks_of_different_key_sets_keep_their_order(blocks) -> None:
    column, expected = JsonObjectColumn(), []
    for names, values, rows in blocks:
        column.add(names, values, rows)
        expected += reference(names, values, rows)
    assert parsed(column.array().to_pylist()) == parsed(expected)


def test_floats_keep_their_text_where_it_matters() -> None:
    # what a reader sees on the board: integral floats stay floats, NaN and inf are null
    texts = json_objects(["a"], [np.array([41.0, -0.0, 0.1, np.nan, np.inf])], 5).to_pylist()
    assert texts == ['{"a":41.0}', '{"a":-0.0}', '{"a":0.1}', '{"a":null}', '{"a":null}']
    assert json_objects(['q"'], [["x\n\"y"]], 1).to_pylist() == ['{"q\\"":"x\\n\\"y"}']


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(-(10**15) + 1, 10**15 - 1).map(float),
                          st.sampled_from([0.0, -0.0, 1e10, 1e15, -1e15, 2.0**53,
                                           float("nan")])),
                min_size=1, max_size=20))
def test_integral_columns_stay_floats_with_their_sign(values: list[float]) -> None:
    """Counts and ages (integral floats) take a faster way through integers: each text reads
    back as the same float (never an int: `41.0`, or Arrow's `1e+10`), the sign of -0.0 kept,
    NaN as null."""
    texts = json_values(np.array(values)).to_pylist()
    for value, text in zip(values, texts, strict=True):
        if math.isnan(value):
            assert text == "null"
            continue
        back = orjson.loads(text)
        assert isinstance(back, float) and back == value, (value, text)
        assert math.copysign(1, back) == math.copysign(1, value), (value, text)
