"""Whole-body validation on columns: the fast path of the API and of `overnight predict`.

Why: checking records one pydantic model at a time, then building a frame from a list of
dicts, cost more than scoring them. Here a body is checked column by column against the spec
(required and unknown fields, types, finiteness, ranges, categories, text lengths) with a few
C-level passes per column, and the model's input frame is built once from the checked
columns.

The check is conservative by design: it accepts a value only where the record models of
`schemas.py` accept it and would produce the same value (an `int` where a float is expected
becomes that float, as pydantic makes it). Anything it is not sure of (a bool, a numpy scalar,
an unhashable category, NaN in a JSON body...) marks the row "look closer", and the caller
asks the per-record pydantic models, which either accept the row (and their output is used)
or name the field and the problem exactly as before. So the fast path can change speed only,
never an answer or an error detail; `tests/unit/test_columnar.py` checks this with
hypothesis over valid and invalid records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from models.data.spec import DatasetSpec
from models.serving.schemas import CATEGORY_MAX_CHARS, MAX_TEXT_CHARS

_NUMBER_TYPES = frozenset({float, int, type(None)})
_NONE = type(None)


@dataclass(frozen=True)
class _Feature:
    """What the record model requires of one feature, read from the spec once."""

    name: str
    kind: str                        # numeric, categorical or text
    low: float
    high: float
    categories: frozenset[str] | None


def _feature(spec_feature: Any) -> _Feature:
    low = -math.inf if spec_feature.min is None else float(spec_feature.min)
    high = math.inf if spec_feature.max is None else float(spec_feature.max)
    categories = (frozenset(spec_feature.categories)
                  if spec_feature.type == "categorical" and spec_feature.categories else None)
    return _Feature(spec_feature.name, spec_feature.type, low, high, categories)


def _object_array(values: list[Any] | np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


class ColumnChecker:
    """The columnar check of one spec's records (built when a model is loaded, not per call)."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.names = list(spec.feature_names)
        self.keys = frozenset(self.names)
        self.features = [_feature(f) for f in spec.features]
        self.categorical = spec.features_of_type("categorical")
        self.columns = pd.Index(self.names)

    def model_ready_for(self, spec: DatasetSpec) -> bool:
        """Whether this checker's frames are already `feature_frame(frame, spec)`: the same
        columns in the same order, and categorical values that are text or None."""
        return (spec.feature_names == self.names
                and spec.features_of_type("categorical") == self.categorical)

    # -- entry points -----------------------------------------------------------------------

    def check_body(self, body: Any, max_batch: int) -> pd.DataFrame | None:
        """The input frame of a parsed JSON body (one record or a list of them) when every
        record passes; None when any value needs the per-record models' verdict."""
        records = [body] if isinstance(body, dict) else body
        if not isinstance(records, list) or not 1 <= len(records) <= max_batch:
            return None
        keys = self.keys
        for record in records:
            if type(record) is not dict or record.keys() != keys:
                return None
        columns = {name: list(map(itemgetter(name), records)) for name in self.names}
        checked, ok = self._check(columns, len(records), nan_is_missing=False)
        return self._valid_frame(checked) if ok.all() else None

    def check_frame(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """The input frame of a file's chunk and, per row, whether it passed. Rows that did
        not pass hold meaningless values: the caller asks the record models about them.
        Missing cells of a file (NaN, NA, None) mean "missing", as JSON null does."""
        columns: dict[str, Any] = {}
        for feature in self.features:
            series = frame[feature.name]
            if feature.kind == "numeric" and _plain_number_dtype(series):
                columns[feature.name] = series.to_numpy(dtype=float)
            else:
                columns[feature.name] = series.to_numpy(dtype=object, na_value=None)
        checked, ok = self._check(columns, len(frame), nan_is_missing=True)
        return self._frame(checked), ok

    def frame_of(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        """The input frame of records the record models accepted (their dumps): built like
        the fast path's, so both paths hand the model the same frame."""
        columns = {}
        for feature in self.features:
            values = [record[feature.name] for record in records]
            columns[feature.name] = (np.array(values, dtype=float) if feature.kind == "numeric"
                                     else _object_array(values))
        return self._valid_frame(columns)

    # -- the checks -------------------------------------------------------------------------

    def _valid_frame(self, columns: dict[str, np.ndarray]) -> pd.DataFrame:
        """Columns that passed: 1-D float64 arrays, and object arrays of text or None, all of
        one length. They are already what pandas stores, so the frame is made from them
        without pandas' inference and checks (`DataFrame._from_arrays`, documented for exactly
        this case; 35 us instead of 220 us for a one-record body, which is most requests)."""
        arrays = [columns[name] for name in self.names]
        return pd.DataFrame._from_arrays(arrays, columns=self.columns,
                                         index=pd.RangeIndex(len(arrays[0])),
                                         verify_integrity=False)

    def _frame(self, columns: dict[str, np.ndarray]) -> pd.DataFrame:
        """Columns as they are: an object column is not re-inferred (a rejected row may hold
        anything, an integer too large for a float included)."""
        return pd.DataFrame({name: pd.Series(columns[name], dtype=columns[name].dtype,
                                             copy=False) for name in self.names})

    def _check(self, columns: dict[str, Any], n: int, *, nan_is_missing: bool
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        ok = np.ones(n, dtype=bool)
        out: dict[str, np.ndarray] = {}
        for feature in self.features:
            values = columns[feature.name]
            if feature.kind == "numeric":
                out[feature.name], passed = _numbers(values, feature, nan_is_missing)
            else:
                out[feature.name], passed = _strings(values, feature)
            ok &= passed
        return out, ok


def _plain_number_dtype(series: pd.Series) -> bool:
    """A column numpy holds as numbers (not bool, not object, not a pandas extension)."""
    return isinstance(series.dtype, np.dtype) and series.dtype.kind in "iuf"


def _numbers(values: Any, feature: _Feature, nan_is_missing: bool
             ) -> tuple[np.ndarray, np.ndarray]:
    """Floats (NaN = missing) and which rows pass: a finite number inside the range, or
    missing. JSON's NaN/Infinity (the standard parser reads them) are not numbers here."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        numbers = values.astype(float, copy=False)
        missing = np.isnan(numbers)         # a file's empty cell
        typed = np.ones(len(numbers), dtype=bool)
    else:
        items = values if isinstance(values, list) else values.tolist()
        n = len(items)
        plain = set(map(type, items)) <= _NUMBER_TYPES      # bool, str, numpy scalars...:
        typed = (np.ones(n, dtype=bool) if plain              # the models decide
                 else np.fromiter((type(v) in _NUMBER_TYPES for v in items), bool, n))
        # `None in items` compares with ==, which an array cell answers with an array: only
        # plain values are compared, anything else is asked `is None`
        missing = (np.zeros(n, dtype=bool) if plain and None not in items
                   else np.fromiter((v is None for v in items), bool, n))
        try:
            if plain:                                       # numpy reads None as NaN
                numbers = np.array(items, dtype=float)
            else:
                numbers = np.full(n, np.nan)
                chosen = typed & ~missing
                numbers[chosen] = np.array([v for v, c in zip(items, chosen, strict=True)
                                            if c], dtype=float)
        except OverflowError:               # an integer beyond float: the models name it
            return np.full(n, np.nan), np.zeros(n, dtype=bool)
        if nan_is_missing:
            missing |= typed & np.isnan(numbers)
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(numbers) & (numbers >= feature.low) & (numbers <= feature.high)
    return numbers, typed & (missing | inside)


def _strings(values: Any, feature: _Feature) -> tuple[np.ndarray, np.ndarray]:
    """Text or category values as they are, and which rows pass (None is "missing", allowed
    for a category, never for text)."""
    column = values if isinstance(values, np.ndarray) else _object_array(values)
    items = column.tolist()
    n = len(items)
    if feature.kind == "categorical" and feature.categories is not None:
        try:
            seen = set(items)
        except TypeError:                   # a list or a dict in the column
            seen = None
        if seen is not None and all(type(v) is str or v is None for v in seen) \
                and seen - {None} <= feature.categories:
            return column, np.ones(n, dtype=bool)
        passed = np.fromiter((v is None or (type(v) is str and v in feature.categories)
                              for v in items), bool, n)
        return column, passed
    allowed = (_NONE, str) if feature.kind == "categorical" else (str,)
    typed = np.fromiter((type(v) in allowed for v in items), bool, n)
    is_text = np.fromiter((type(v) is str for v in items), bool, n)
    lengths = np.fromiter((len(v) if type(v) is str else 0 for v in items), np.int64, n)
    if feature.kind == "categorical":
        return column, typed & (~is_text | (lengths <= CATEGORY_MAX_CHARS))
    return column, typed & (lengths >= 1) & (lengths <= MAX_TEXT_CHARS)


def validated_frame(body: Any, checker: ColumnChecker, body_model: type[BaseModel],
                    max_batch: int) -> pd.DataFrame:
    """The model's input frame of a parsed JSON body: the columnar check when it passes,
    otherwise the per-record models, which accept the body or raise pydantic's
    `ValidationError` naming every bad field (`[3].age: ...`)."""
    frame = checker.check_body(body, max_batch)
    if frame is not None:
        return frame
    dumped = body_model.model_validate(body).model_dump()
    return checker.frame_of(dumped if isinstance(dumped, list) else [dumped])
