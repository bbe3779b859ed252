"""The nights page's questions: each night's stages and its retraining decision, with every
trigger's evidence (both the CLI's reports `nights` and `decisions`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from monitoring.board.queries.sql import Filters, report


def night_runs(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    return report(con, "nights", filters, day="night_date")


def decisions(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    return report(con, "decisions", filters, day="night_date")


def _shown(value: Any) -> str:
    """A trigger's value for a table column that mixes numbers and names."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def expand_triggers(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (night, dataset, trigger): its value against its threshold, fired or not."""
    rows = []
    for night, dataset, text in frame[["night_date", "dataset", "triggers"]].itertuples(
            index=False):
        for trigger in json.loads(text) if text else []:
            rows.append({"night_date": night, "dataset": dataset, "trigger": trigger["name"],
                         "value": _shown(trigger.get("value")),
                         "threshold": trigger.get("threshold"),
                         "fired": bool(trigger.get("fired")), "note": trigger.get("note", "")})
    return pd.DataFrame(rows, columns=["night_date", "dataset", "trigger", "value", "threshold",
                                       "fired", "note"])


@dataclass(frozen=True)
class Nights:
    """The stages of the nights in range, and their decisions (with the triggers' JSON)."""

    runs: pd.DataFrame
    decisions: pd.DataFrame

    @property
    def triggers(self) -> pd.DataFrame:
        return expand_triggers(self.decisions)


def nights(con: duckdb.DuckDBPyConnection, filters: Filters) -> Nights:
    return Nights(night_runs(con, filters), decisions(con, filters))
