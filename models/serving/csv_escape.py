"""CSV cells that a spreadsheet would run as a formula are written as text.

A batch-scoring output carries users' own columns (ids, text) through, and people open these
files in spreadsheets, which treat a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage
return as a formula (`=cmd|' /C calc'!A0`, `+1+1`): CSV injection. Following OWASP, such a cell
of a text column (and such a header) gets a leading single quote, so it shows as the text it
is. Numeric, boolean and date columns are never touched: `-1.5` in a numeric column is a
number. Text cells are also written between double quotes (OWASP's other half, and the only
way a carriage return inside a cell stays inside it). Parquet outputs keep their exact values;
`overnight predict --raw` writes CSV as pandas does, unescaped.
"""

from __future__ import annotations

import csv
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_QUOTING = csv.QUOTE_NONNUMERIC     # text between quotes; numbers and booleans bare


def escape_cell(value: Any) -> Any:
    """`'=1+1` for `=1+1`; anything that is not a string starting a formula is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _is_text(series: pd.Series) -> bool:
    dtype = series.dtype
    return not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
                or pd.api.types.is_datetime64_any_dtype(dtype)
                or isinstance(dtype, pd.PeriodDtype | pd.IntervalDtype))


def escape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` safe to open in a spreadsheet as CSV (text columns and headers)."""
    out = frame.copy()
    for position in range(frame.shape[1]):      # by position: names may repeat
        series = frame.iloc[:, position]
        if _is_text(series):
            out.isetitem(position, series.astype(object).map(escape_cell, na_action="ignore"))
    out.columns = [escape_cell(c) for c in frame.columns]
    return out
