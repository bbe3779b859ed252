"""CSV outputs written by Arrow, with the cells a spreadsheet would run as a formula as text.

A batch-scoring output carries users' own columns (ids, text) through, and people open these
files in spreadsheets, which treat a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage
return as a formula (`=cmd|' /C calc'!A0`, `+1+1`): CSV injection. Following OWASP, such a cell
of a text column (and such a header) gets a leading single quote, so it shows as the text it
is. Numeric, boolean and date columns are never touched: `-1.5` in a numeric column is a
number. Text cells are also written between double quotes (OWASP's other half, and the only
way a carriage return inside a cell stays inside it). Parquet outputs keep their exact values;
`overnight predict --raw` writes CSV as pandas does, unescaped.

Why Arrow writes the file: pandas' `to_csv` formats every number through Python and took
0.25 s per 50,000 scored rows (5 s of `overnight predict` on 1M rows, most of a CSV run);
Arrow's CSV writer takes 0.04 s, and the escape is one regular-expression replace per text
column in Arrow instead of a Python call per cell. Arrow writes numbers as their shortest
round-trip text (`2.0` as `2`, `0.1` as `0.1`) and booleans as `true` / `false`: the same
values, read back by any CSV reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START = r"^([=+\-@\t\r])"      # the same characters, for Arrow's RE2


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


def _text(series: pd.Series) -> pa.Array:
    """A column's cells as Arrow strings (missing stays missing); cells that are not strings
    (a number in a text column of a Parquet file, a date...) as their text."""
    try:
        return pa.array(series, type=pa.string(), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        return pa.array(series.astype(object).map(str, na_action="ignore"), type=pa.string(),
                        from_pandas=True)


def _column(series: pd.Series) -> pa.Array:
    """One column as Arrow writes it: text escaped, numbers, booleans and dates as they are
    (a kind Arrow cannot type or write, such as a period, as its text: never a formula)."""
    if _is_text(series):
        return pc.replace_substring_regex(_text(series), _FORMULA_START, r"'\1")
    if not isinstance(series.dtype, pd.PeriodDtype | pd.IntervalDtype):
        try:
            return pa.array(series, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError):
            pass
    return _text(series)


def escaped_table(frame: pd.DataFrame) -> pa.Table:
    """`frame` as an Arrow table safe to write as CSV for a spreadsheet (text cells and
    headers escaped; names may repeat, so columns are taken by position)."""
    arrays = [_column(frame.iloc[:, position]) for position in range(frame.shape[1])]
    names = [str(escape_cell(str(name))) for name in frame.columns]
    return pa.Table.from_arrays(arrays, names=names)


def append_csv(frame: pd.DataFrame, path: Path, *, header: bool) -> None:
    """Append `frame` to the CSV file at `path`, escaped, text quoted, numbers bare."""
    table = escaped_table(frame)
    with path.open("ab") as handle:
        pa_csv.write_csv(table, handle, pa_csv.WriteOptions(include_header=header))
