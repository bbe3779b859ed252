"""`overnight predict` outputs that people open: the input is never overwritten, and CSV cells
that a spreadsheet would run as formulas are escaped (OWASP), while Parquet stays exact."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from models.serving.batch import BatchScoringError, rejects_path, score_file
from tests.support.serving_support import data_home, records, register_champion

OVERNIGHT = str(Path(sys.executable).parent / "overnight")
FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1", "plain", "a=b"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data home whose customer champion is a small real model."""
    with data_home(tmp_path_factory.mktemp("outputs") / "home") as path:
        register_champion("customer", rows=300)
        yield path


@pytest.fixture
def source(home: Path, tmp_path: Path) -> Path:
    """Customer rows with hostile ids and notes, a negative numeric column, one invalid row."""
    frame = pd.DataFrame(records("customer", len(FORMULAS)))
    frame.insert(0, "customer_id", FORMULAS)
    frame["note"] = list(reversed(FORMULAS))
    frame["balance"] = [-5.5, -1.0, 0.0, 2.0, -3.25, 4.0, -0.5, 1.0]
    frame["age"] = frame["age"].astype(object)
    frame.loc[0, "age"] = "forty"                  # invalid: goes to the rejects file
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)   # keeps the \r inside
    return path


def landed(home: Path) -> list[Path]:
    return sorted((home / "landing").rglob("*.parquet"))


@pytest.mark.parametrize("spelling", ["same", "dotdot", "symlink", "hardlink", "rejects"])
def test_out_equal_to_file_is_refused_before_reading(home: Path, source: Path,
                                                     spelling: str) -> None:
    before, logs = source.read_bytes(), landed(home)
    out = {"same": source, "dotdot": source.parent / ".." / source.parent.name / source.name,
           "symlink": source.parent / "link.csv", "hardlink": source.parent / "hard.csv",
           "rejects": source.parent / "in.csv"}[spelling]
    given = source
    if spelling == "symlink":
        out.symlink_to(source)
    elif spelling == "hardlink":
        os.link(source, out)
    elif spelling == "rejects":          # OUT.rejects.csv would be the input
        given = source.rename(rejects_path(out))
        before = given.read_bytes()
    # a dataset without any champion: the refusal comes first, before anything is loaded
    with pytest.raises(BatchScoringError, match="is the input file"):
        score_file("nochampion", given, out, progress=False)
    with pytest.raises(BatchScoringError, match="would overwrite the input"):
        score_file("customer", given, out, progress=False)
    assert given.read_bytes() == before and landed(home) == logs
    assert not list(source.parent.glob(".*.tmp"))


def test_the_command_refuses_in_one_line(home: Path, source: Path) -> None:
    before = source.read_bytes()
    relative = Path("..") / source.parent.name / source.name
    out = subprocess.run([OVERNIGHT, "predict", "--dataset", "customer", "--file", str(source),
                          "--out", str(relative)], capture_output=True, text=True, timeout=120,
                         cwd=source.parent, env={**os.environ, "OVERNIGHT_HOME": str(home)})
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "is the input file" in out.stderr and "Traceback" not in out.stderr
    assert source.read_bytes() == before


def test_csv_formula_cells_are_escaped_numbers_untouched(home: Path, source: Path) -> None:
    out = source.parent / "scored.csv"
    result = score_file("customer", source, out, progress=False, log_predictions=False)
    assert (result.scored, result.rejected) == (7, 1)
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    expected = ["'" + v if v[0] in "=+-@\t\r" else v for v in FORMULAS]
    assert scored["customer_id"].tolist() == expected[1:]
    assert scored["note"].tolist() == list(reversed(expected))[1:]
    # numbers as Arrow writes them: the shortest text that reads back as the same number
    assert scored["balance"].tolist() == ["-1", "0", "2", "-3.25", "4", "-0.5", "1"]
    assert float(scored["confidence"].iloc[0]) > 0          # our numeric columns stay numbers
    assert ",-3.25," in out.read_text() and "\"'+1+1\"," in out.read_text()  # bare / quoted
    rejects = pd.read_csv(result.rejects, dtype=str, keep_default_na=False)
    assert rejects["customer_id"].tolist() == ["'=cmd|' /C calc'!A0"]

    raw = score_file("customer", source, source.parent / "raw.csv", progress=False,
                     log_predictions=False, raw=True)
    text = raw.output.read_text()
    assert "\n+1+1," in text and "\n@SUM(A1:A9)," in text and "'" not in text.replace(
        "' /C calc'", "")


def test_parquet_outputs_are_exact(home: Path, source: Path) -> None:
    result = score_file("customer", source, source.parent / "scored.parquet", progress=False,
                        log_predictions=False)
    scored = pd.read_parquet(result.output)
    assert scored["customer_id"].tolist() == FORMULAS[1:]
    assert scored["note"].tolist() == list(reversed(FORMULAS))[1:]
