"""The CLI's result printer: what `-f json` and `-f csv` print is the warehouse's figure."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from orchestration.cli.output import OutputFormat, print_frame


def test_json_keeps_the_full_precision_of_a_float(capsys: pytest.CaptureFixture[str]) -> None:
    # pandas' default (10 digits) printed 58/60 as 0.9666666667, so the board (reading DuckDB)
    # and `overnight report -f json` disagreed on the same agreement figure
    frame = pd.DataFrame({"pairs": [60], "agreement": [58 / 60],
                          "day": [pd.Timestamp("2026-12-02")]})
    print_frame(frame, OutputFormat.json)
    [row] = json.loads(capsys.readouterr().out)
    assert row["agreement"] == pytest.approx(58 / 60, rel=1e-14, abs=0)
    assert round(row["agreement"], 12) == round(58 / 60, 12)
    assert row["pairs"] == 60 and row["day"].startswith("2026-12-02")
