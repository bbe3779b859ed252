"""The drift page's questions: the share of drifted columns per night (the `drift_trend`
report) and every column's verdict, with its score on one scale for the heat map. Each row
says its `source`: the night's batch, or the traffic served since the night before."""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import pandas as pd

from monitoring.board.queries.sql import Filters, report, run_sql, scope

# Drift methods whose score is a p-value (drift when small); the others are distances.
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})


def relative_drift(method: str | None, score: float | None, threshold: float | None,
                   drifted: bool | None) -> float:
    """A column's drift score on one scale for every test: 1 at its threshold, above 1 drift.

    p-value tests drift when the score is small, distances when it is large; the heat map
    needs one direction, so p-values map to log(p)/log(threshold) and distances to
    score/threshold. Without a usable score the verdict alone gives 0 or 1.
    """
    fallback = 1.0 if drifted else 0.0
    if score is None or threshold is None or threshold <= 0 or math.isnan(score):
        return fallback
    if method in P_VALUE_METHODS:
        if threshold >= 1:
            return fallback
        return math.log(max(score, 1e-300)) / math.log(threshold)
    return score / threshold


def drift_trend(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    return report(con, "drift_trend", filters, day="night_date")


def drift_columns(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Per-column verdicts of each night, with the score on the common scale."""
    frame = run_sql(con, (
        "SELECT r.dataset, r.night_date, coalesce(r.source, 'batch') AS source, c.column_name,"
        " c.column_type, c.method, c.score, c.threshold, c.drifted"
        " FROM drift_columns c JOIN drift_reports r USING (report_id)"
        " WHERE " + scope("r.night_date", "r.dataset") +
        " ORDER BY r.dataset, r.night_date, c.column_name"), filters.params())
    frame["relative"] = [relative_drift(m, None if pd.isna(s) else float(s),
                                        None if pd.isna(t) else float(t), bool(d))
                         for m, s, t, d in frame[["method", "score", "threshold",
                                                  "drifted"]].itertuples(index=False)]
    return frame


@dataclass(frozen=True)
class Drift:
    trend: pd.DataFrame
    columns: pd.DataFrame


def drift(con: duckdb.DuckDBPyConnection, filters: Filters) -> Drift:
    return Drift(drift_trend(con, filters), drift_columns(con, filters))


def of_source(found: Drift, source: str) -> Drift:
    """The reports of one source ('batch' or 'served') only."""
    trend = found.trend[found.trend["source"] == source] if "source" in found.trend else (
        found.trend if source == "batch" else found.trend.iloc[0:0])
    return Drift(trend, found.columns[found.columns["source"] == source])
