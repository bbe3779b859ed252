"""CSV outputs for spreadsheets (models/serving/csv_escape.py): formula cells and headers of text
columns escaped, numbers, booleans and dates untouched, and any text cell read back as the
text it was (its escape aside), whatever it holds: quotes, commas, line breaks, a carriage
return, non-ASCII."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from models.serving.csv_escape import FORMULA_STARTS, append_csv, escape_cell, escaped_table


def read_back(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_headers_and_only_text_columns_are_escaped() -> None:
    frame = pd.DataFrame({"=h": ["=x", None], "n": [-1, 2], "b": [True, False],
                          "s": pd.array(["-a", pd.NA], dtype="string"),
                          "f": [-1.5, float("nan")]})
    safe = escaped_table(frame)
    assert safe.column_names == ["'=h", "n", "b", "s", "f"]
    assert safe.column("'=h").to_pylist() == ["'=x", None]
    assert safe.column("n").to_pylist() == [-1, 2]
    assert safe.column("b").to_pylist() == [True, False]
    assert safe.column("s").to_pylist() == ["'-a", None]
    assert safe.column("f").to_pylist()[0] == -1.5 and safe.column("f").null_count == 1
    assert list(frame.columns) == ["=h", "n", "b", "s", "f"]     # the caller's frame is unchanged


def test_file_layout_text_quoted_numbers_bare_header_once(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    frame = pd.DataFrame({"id": ["+1", "x"], "n": [-3.25, 2.0], "ok": [True, False]})
    append_csv(frame, path, header=True)
    append_csv(frame, path, header=False)
    text = path.read_text()
    assert text.splitlines() == ['"id","n","ok"', "\"'+1\",-3.25,true", '"x",2,false',
                                 "\"'+1\",-3.25,true", '"x",2,false']
    back = pd.read_csv(path)
    assert back["n"].tolist() == [-3.25, 2.0, -3.25, 2.0] and back["ok"].dtype == bool


def test_repeated_names_and_cells_arrow_cannot_type(tmp_path: Path) -> None:
    """A Parquet input may carry columns of mixed objects (Decimal, dates in an object
    column) and a frame may repeat a name: each cell is written as its text."""
    frame = pd.DataFrame([["a", Decimal("1.10"), datetime(2024, 1, 2)],
                          ["-b", 3, None]], columns=["x", "mixed", "x"])
    frame["mixed"] = frame["mixed"].astype(object)
    frame.iloc[:, 2] = frame.iloc[:, 2].astype(object)
    path = tmp_path / "out.csv"
    append_csv(frame, path, header=True)
    back = read_back(path)
    assert list(back.columns) == ["x", "mixed", "x.1"]
    assert back["mixed"].tolist() == ["1.10", "3"] and back["x"].tolist() == ["a", "'-b"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1), min_size=1, max_size=8))
def test_any_text_cell_reads_back_as_its_escaped_self(cells: list[str]) -> None:
    """Read back by a reader that follows RFC 4180 (Arrow's; pandas' C reader stops a cell at
    a NUL character, whoever wrote the file)."""
    buffer = io.BytesIO()
    pa_csv.write_csv(escaped_table(pd.DataFrame({"cell": cells})), buffer)
    back = pa_csv.read_csv(io.BytesIO(buffer.getvalue()), convert_options=pa_csv.ConvertOptions(
        column_types={"cell": pa.string()}, strings_can_be_null=False,
        quoted_strings_can_be_null=False))
    assert back.column("cell").to_pylist() == [escape_cell(c) for c in cells]
    assert all(not v.startswith(FORMULA_STARTS) for v in back.column("cell").to_pylist())


def test_every_kind_of_column_a_file_can_bring_is_written(tmp_path: Path) -> None:
    """Columns carried through from a user's Parquet file may be of any pandas kind; each is
    written (as its text where Arrow has no CSV form for it), and text ones are escaped."""
    frame = pd.DataFrame({
        "tz": pd.to_datetime(["2024-01-02 03:04:05", None]).tz_localize("Europe/Paris"),
        "cat": pd.Categorical(["=a", None]), "nb": pd.array([True, None], dtype="boolean"),
        "u64": pd.array([2**63, None], dtype="UInt64"),
        "td": pd.to_timedelta([1, None], unit="s"),
        "per": pd.period_range("2024-01", periods=2, freq="M"),
        "iv": pd.arrays.IntervalArray.from_breaks([0, 1, 2]),
        "cx": np.array([1 + 2j, -1j]),
        "dec": pd.Series([Decimal("-1.5"), None], dtype=object),
        "lists": pd.Series([[1, 2], None], dtype=object)})
    path = tmp_path / "out.csv"
    append_csv(frame, path, header=True)
    first = read_back(path).iloc[0].to_dict()
    assert first == {"tz": "2024-01-02 03:04:05.000000000+0100", "cat": "'=a", "nb": "true",
                     "u64": "9223372036854775808", "td": "0 days 00:00:01", "per": "2024-01",
                     "iv": "(0, 1]", "cx": "(1+2j)", "dec": "'-1.5", "lists": "[1, 2]"}
