"""The performance page's questions: the serving champion's accuracy, macro F1 and per-class
recall per day (from confusion counts SQL aggregates), and the champion switches between.

No named report asks these: `daily_accuracy` has accuracy only, and `champion_history` dates a
switch by the clock, not by the night it happened in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from monitoring.board.queries.sql import Filters, run_sql


def metrics_from_counts(counts: pd.DataFrame) -> dict[str, Any]:
    """Accuracy, macro F1 and per-class recall from (label, predicted_class, n) counts.

    The same figures as `monitoring.performance` computes from the labelled pairs with
    scikit-learn (F1 over the classes seen or predicted, recall of each true class), but from
    a confusion table that SQL aggregates, so a long date range never loads every row.
    """
    total = int(counts["n"].sum())
    if total == 0:
        return {"n_labelled": 0, "accuracy": math.nan, "f1_macro": math.nan,
                "recall_per_class": {}}
    hits = counts[counts["label"] == counts["predicted_class"]].groupby("label")["n"].sum()
    support = counts.groupby("label")["n"].sum()
    predicted = counts.groupby("predicted_class")["n"].sum()
    f1s, recalls = [], {}
    for name in sorted(set(support.index) | set(predicted.index)):
        tp = float(hits.get(name, 0))
        recall = tp / support[name] if support.get(name, 0) else 0.0
        precision = tp / predicted[name] if predicted.get(name, 0) else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        if name in support.index:
            recalls[name] = recall
    return {"n_labelled": total, "accuracy": float(hits.sum()) / total,
            "f1_macro": sum(f1s) / len(f1s), "recall_per_class": recalls}


def daily_performance(con: duckdb.DuckDBPyConnection, dataset: str, filters: Filters
                      ) -> pd.DataFrame:
    """Per day and model version, the serving champion's figures over its labelled rows."""
    counts = run_sql(con, (
        "SELECT CAST(p.predicted_at AS DATE) AS day, p.model_version, f.label,"
        " p.predicted_class, count(*) AS n FROM predictions p JOIN feedback f"
        " USING (prediction_id) WHERE p.dataset = $dataset AND p.role <> 'shadow'"
        " AND coalesce(p.alias, 'champion') = 'champion'"
        " AND ($start::DATE IS NULL OR CAST(p.predicted_at AS DATE) >= $start::DATE)"
        " AND ($end::DATE IS NULL OR CAST(p.predicted_at AS DATE) <= $end::DATE)"
        " GROUP BY ALL ORDER BY 1, 2"), {**filters.params(), "dataset": dataset})
    rows = [{"day": day, "model_version": version, **metrics_from_counts(group)}
            for (day, version), group in counts.groupby(["day", "model_version"], sort=True)]
    return pd.DataFrame(rows, columns=["day", "model_version", "n_labelled", "accuracy",
                                       "f1_macro", "recall_per_class"])


def recall_long(daily: pd.DataFrame) -> pd.DataFrame:
    """Per-class recall as rows (day, model_version, class, recall, n_labelled) for a chart."""
    rows = [{"day": r.day, "model_version": r.model_version, "class": name, "recall": value,
             "n_labelled": r.n_labelled}
            for r in daily.itertuples(index=False) for name, value in r.recall_per_class.items()]
    return pd.DataFrame(rows, columns=["day", "model_version", "class", "recall", "n_labelled"])


def champion_switches(con: duckdb.DuckDBPyConnection, dataset: str, filters: Filters
                      ) -> pd.DataFrame:
    """Every change of champion, dated by the night it happened in (promotions happen inside
    a night's run, whose dates may be simulated), else by the day of the change."""
    return run_sql(con, (
        "WITH windows AS (SELECT dataset, night_date, min(started_at) AS first,"
        " max(finished_at) AS last FROM nightly_runs WHERE dataset = $dataset GROUP BY ALL),"
        " switches AS (SELECT h.change_id, h.changed_at, h.model_version, h.previous_version,"
        " h.reason, h.changed_by, coalesce((SELECT max(w.night_date) FROM windows w"
        " WHERE h.changed_at BETWEEN w.first AND w.last), CAST(h.changed_at AS DATE)) AS night"
        " FROM alias_history h WHERE h.dataset = $dataset AND h.alias = 'champion')"
        " SELECT night, model_version, previous_version, reason, changed_by, changed_at"
        " FROM switches WHERE ($start::DATE IS NULL OR night >= $start::DATE)"
        " AND ($end::DATE IS NULL OR night <= $end::DATE) ORDER BY change_id"),
        {**filters.params(), "dataset": dataset})


@dataclass(frozen=True)
class Performance:
    daily: pd.DataFrame
    recall: pd.DataFrame
    switches: pd.DataFrame


def performance(con: duckdb.DuckDBPyConnection, dataset: str, filters: Filters
                ) -> Performance:
    daily = daily_performance(con, dataset, filters)
    return Performance(daily, recall_long(daily), champion_switches(con, dataset, filters))
