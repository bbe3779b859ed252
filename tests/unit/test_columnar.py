"""The columnar fast path decides exactly as the per-record pydantic models do.

Hypothesis draws bodies of valid and invalid records (wrong types, bools, NaN and infinities,
out-of-range numbers, unknown categories, blank or overlong text, missing and unknown fields,
huge integers, nested values) and the answer of `validated_frame` (fast path, then the models
when the fast check is unsure) is compared with the models alone: the same bodies accepted,
the same input frame for the model, the same field-by-field errors. The file path
(`check_frame`) is compared row by row the same way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.data.datasets import builtin
from models.data.spec import DatasetSpec, FeatureSpec
from models.serving.columnar import ColumnChecker, validated_frame
from models.serving.schemas import field_errors, predict_body_model, record_model

MAX_BATCH = 8
ODD = [True, False, "1.5", "", " ", [1], {"a": 1}, math.nan, math.inf, -math.inf, 10**400,
       2**70, -1e308, 1e308, "x" * 201]

MIXED = DatasetSpec(
    name="mixed", kind="tabular", target="y", classes=("a", "b"),
    features=(FeatureSpec(name="n", type="numeric", min=0, max=10),
              FeatureSpec(name="free", type="numeric"),
              FeatureSpec(name="c", type="categorical", categories=("red", "blue")),
              FeatureSpec(name="open", type="categorical"),
              FeatureSpec(name="t", type="text")))
SPECS = {"mixed": MIXED, **{name: builtin(name).spec for name in ("customer", "news")}}


def good_value(feature: FeatureSpec) -> st.SearchStrategy[Any]:
    if feature.type == "numeric":
        low = -1e6 if feature.min is None else feature.min
        high = 1e6 if feature.max is None else feature.max
        return st.one_of(st.floats(low, high), st.integers(math.ceil(low),
                                                           math.floor(high)), st.none())
    if feature.type == "categorical":
        if feature.categories:
            return st.one_of(st.sampled_from(feature.categories), st.none())
        return st.one_of(st.text(max_size=12), st.none())
    return st.text(min_size=1, max_size=30)


def any_value(feature: FeatureSpec) -> st.SearchStrategy[Any]:
    """Mostly valid values, sometimes one a client should not send."""
    bad = st.one_of(st.sampled_from(ODD), st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(), st.text(max_size=5), st.none())
    return st.one_of(good_value(feature), good_value(feature), good_value(feature), bad)


@st.composite
def record(draw: st.DrawFn, spec: DatasetSpec, valid: bool) -> dict[str, Any]:
    out = {f.name: draw(good_value(f) if valid else any_value(f)) for f in spec.features}
    if not valid and draw(st.integers(0, 9)) == 0:
        out.pop(draw(st.sampled_from(spec.feature_names)))
    if not valid and draw(st.integers(0, 9)) == 0:
        out[draw(st.sampled_from(["extra", "N", "n "]))] = 1
    return out


@st.composite
def body(draw: st.DrawFn, valid: bool) -> tuple[str, Any]:
    name = draw(st.sampled_from(sorted(SPECS)))
    spec = SPECS[name]
    records = draw(st.lists(record(spec, valid), min_size=1 if valid else 0,
                            max_size=MAX_BATCH if valid else MAX_BATCH + 2))
    if valid and len(records) == 1 and draw(st.booleans()):
        return name, records[0]
    if not valid and draw(st.integers(0, 19)) == 0:
        records.append(draw(st.sampled_from([None, 3, "r", []])))
    return name, records


MODELS = {name: predict_body_model(spec, record_model(spec), MAX_BATCH)
          for name, spec in SPECS.items()}
CHECKERS = {name: ColumnChecker(spec) for name, spec in SPECS.items()}


def models_alone(name: str, value: Any) -> pd.DataFrame | list[dict[str, str]]:
    """What the per-record models say: the frame of their dumps, or their error details."""
    try:
        dumped = MODELS[name].model_validate(value).model_dump()
    except ValidationError as error:
        return field_errors(error)
    return CHECKERS[name].frame_of(dumped if isinstance(dumped, list) else [dumped])


def fast_then_models(name: str, value: Any) -> pd.DataFrame | list[dict[str, str]]:
    try:
        return validated_frame(value, CHECKERS[name], MODELS[name], MAX_BATCH)
    except ValidationError as error:
        return field_errors(error)


def same(a: pd.DataFrame | list[dict[str, str]], b: pd.DataFrame | list[dict[str, str]]
         ) -> None:
    assert type(a) is type(b), (a, b)
    if isinstance(a, pd.DataFrame):
        assert isinstance(b, pd.DataFrame)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    else:
        assert a == b


SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(body(valid=False))
def test_fast_path_answers_as_the_record_models_do(drawn: tuple[str, Any]) -> None:
    name, value = drawn
    same(fast_then_models(name, value), models_alone(name, value))
    fast = CHECKERS[name].check_body(value, MAX_BATCH)
    if fast is not None:      # what the fast path accepts, the models accept, value for value
        same(fast, models_alone(name, value))


@SETTINGS
@given(body(valid=True))
def test_valid_bodies_take_the_fast_path(drawn: tuple[str, Any]) -> None:
    """The fast path is not a path nobody takes: every valid body passes it."""
    name, value = drawn
    fast = CHECKERS[name].check_body(value, MAX_BATCH)
    assert fast is not None
    same(fast, models_alone(name, value))


def file_frame(spec: DatasetSpec, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Records as a messy file's chunk may hold them: every column of object dtype."""
    return pd.DataFrame({name: pd.Series([row[name] for row in rows], dtype=object)
                         for name in spec.feature_names})


@SETTINGS
@given(st.data())
def test_file_rows_pass_only_where_the_record_model_accepts_them(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(SPECS)))
    spec = SPECS[name]
    rows = data.draw(st.lists(st.fixed_dictionaries({f.name: any_value(f)
                                                     for f in spec.features}),
                              min_size=1, max_size=10))
    frame = file_frame(spec, rows)
    checker, model = CHECKERS[name], record_model(spec)
    checked, ok = checker.check_frame(frame)
    for i, row in enumerate(frame.to_dict(orient="records")):
        cleaned = {k: None if isinstance(v, float) and v != v else v for k, v in row.items()}
        if not ok[i]:
            continue
        dumped = model.model_validate(cleaned).model_dump()     # raises if it was wrong
        same(checked.iloc[[i]].reset_index(drop=True), checker.frame_of([dumped]))


@pytest.mark.parametrize("value, passes", [
    (5, True), (5.5, True), (None, True), (True, False), ("5", False), (11, False),
    (math.nan, False), (math.inf, False), (10**400, False), (np.float64(5), False)])
def test_numbers_are_checked_as_the_schema_says(value: Any, passes: bool) -> None:
    """Examples named outright (a bool is not a number; NaN in JSON is not "missing"; a
    numpy scalar is left to the record model, which the fallback asks)."""
    row = {"n": value, "free": 1.0, "c": "red", "open": None, "t": "words"}
    assert (CHECKERS["mixed"].check_body(row, MAX_BATCH) is not None) is passes


@SETTINGS
@given(body(valid=True))
def test_checked_frames_are_what_pandas_builds_from_the_records(drawn: tuple[str, Any]
                                                                ) -> None:
    """The frame made without pandas' inference (`DataFrame._from_arrays`) is the frame
    pandas' own constructor makes of the same columns: values, dtypes, index, one block per
    dtype."""
    name, value = drawn
    records = [value] if isinstance(value, dict) else value
    spec = SPECS[name]
    fast = CHECKERS[name].check_body(value, MAX_BATCH)
    assert fast is not None
    expected = pd.DataFrame({f.name: pd.Series([r[f.name] for r in records],
                                               dtype=float if f.type == "numeric" else object)
                             for f in spec.features})
    pd.testing.assert_frame_equal(fast, expected, check_exact=True)
    assert fast._mgr.is_consolidated()
    assert isinstance(fast.index, pd.RangeIndex)


def test_array_cells_in_a_file_column_are_refused_per_row() -> None:
    """A Parquet list column read into a number feature holds numpy arrays, whose `==`
    answers with an array: the check must not compare them (it asks `is None`), and only
    that row goes to the record models."""
    spec = SPECS["customer"]
    rows = [{f.name: None for f in spec.features} for _ in range(3)]     # all missing: valid
    frame = file_frame(spec, rows)
    frame["age"] = pd.Series([np.array([1.0, 2.0]), 30.0, None], dtype=object)
    _, ok = CHECKERS["customer"].check_frame(frame)
    assert ok.tolist() == [False, True, True]
