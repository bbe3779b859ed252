"""The predictions page's questions: volume, predicted classes, confidence and the share
flagged for review per day, and the shadow model's agreement with the served one (the
`shadow_agreement` report)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from monitoring.board.queries.sql import Filters, report, run_sql, scope

ROLES = ("served", "shadow", "batch")
CONFIDENCE_BUCKETS = 10


def _roles(roles: Sequence[str] | None) -> list[str]:
    return list(roles) if roles else list(ROLES)


def role_counts(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    return run_sql(con, (
        "SELECT role, count(*) AS predictions, min(predicted_at) AS first,"
        " max(predicted_at) AS last FROM predictions WHERE " +
        scope("CAST(predicted_at AS DATE)") + " GROUP BY role ORDER BY role"),
        filters.params())


def prediction_daily(con: duckdb.DuckDBPyConnection, filters: Filters, roles: Sequence[str]
                     ) -> pd.DataFrame:
    """Per day, dataset and role: volume, confidence quantiles, share flagged for review."""
    return run_sql(con, (
        "SELECT CAST(predicted_at AS DATE) AS day, dataset, role, count(*) AS predictions,"
        " avg(confidence) AS mean_confidence,"
        " quantile_cont(confidence, 0.1) AS confidence_p10,"
        " quantile_cont(confidence, 0.5) AS confidence_median,"
        " quantile_cont(confidence, 0.9) AS confidence_p90,"
        " avg(CAST(needs_review AS DOUBLE)) AS review_share,"
        " count(needs_review) FILTER (WHERE needs_review) AS needs_review,"
        " avg(latency_ms) AS mean_latency_ms FROM predictions WHERE list_contains($roles, role)"
        " AND " + scope("CAST(predicted_at AS DATE)") + " GROUP BY ALL ORDER BY 1, 2, 3"),
        {**filters.params(), "roles": _roles(roles)})


def class_distribution(con: duckdb.DuckDBPyConnection, filters: Filters,
                       roles: Sequence[str]) -> pd.DataFrame:
    """Per day, dataset and predicted class: count and share of the day's predictions."""
    frame = run_sql(con, (
        "SELECT CAST(predicted_at AS DATE) AS day, dataset, predicted_class, count(*) AS n"
        " FROM predictions WHERE list_contains($roles, role) AND " +
        scope("CAST(predicted_at AS DATE)") + " GROUP BY ALL ORDER BY 1, 2, 3"),
        {**filters.params(), "roles": _roles(roles)})
    frame["share"] = frame["n"] / frame.groupby(["day", "dataset"])["n"].transform("sum")
    return frame


def confidence_histogram(con: duckdb.DuckDBPyConnection, filters: Filters,
                         roles: Sequence[str]) -> pd.DataFrame:
    """Counts of predictions per confidence bucket ([0, 0.1), ... [0.9, 1]) and dataset."""
    # CONFIDENCE_BUCKETS is a module constant (an int), never user input; filters are bound.
    return run_sql(con, (
        f"SELECT dataset, least(floor(confidence * {CONFIDENCE_BUCKETS}), "
        f"{CONFIDENCE_BUCKETS - 1}) / {CONFIDENCE_BUCKETS} AS bucket, count(*) AS n"
        " FROM predictions WHERE confidence IS NOT NULL AND list_contains($roles, role)"
        " AND " + scope("CAST(predicted_at AS DATE)") + " GROUP BY ALL ORDER BY 1, 2"),
        {**filters.params(), "roles": _roles(roles)})


def shadow_agreement(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Per day and dataset, how often the shadow model agrees with the served champion on
    the same records: the `shadow_agreement` report, whose pairs share dataset, request id
    and the record's inputs (one request may carry a list of records; `warehouse.reports`
    says why the dataset is part of the key)."""
    found = report(con, "shadow_agreement", filters, day="day").rename(
        columns={"shadow": "shadow_version", "served_by": "served_version"})
    found = found[["day", "dataset", "shadow_version", "served_version", "pairs", "agreement"]]
    return found.sort_values(["day", "dataset"], kind="stable", ignore_index=True)


@dataclass(frozen=True)
class Predictions:
    roles: pd.DataFrame
    daily: pd.DataFrame
    classes: pd.DataFrame
    confidence: pd.DataFrame
    agreement: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.daily.empty

    @property
    def total(self) -> int:
        return int(self.daily["predictions"].sum())

    @property
    def review_share(self) -> float:
        """Share flagged for review, over the predictions that say (batch rows do not)."""
        return _weighted(self.daily["review_share"], self.daily["predictions"])

    @property
    def mean_confidence(self) -> float:
        return _weighted(self.daily["mean_confidence"], self.daily["predictions"])

    @property
    def agreement_rate(self) -> float:
        """Shadow agreement over all pairs of the range (NaN when shadow mode is off)."""
        return _weighted(self.agreement["agreement"], self.agreement["pairs"])


def _weighted(values: pd.Series, weights: pd.Series) -> float:
    known = values.notna()
    total = float(weights[known].sum())
    return float((values[known] * weights[known]).sum() / total) if total else math.nan


def predictions(con: duckdb.DuckDBPyConnection, filters: Filters, roles: Sequence[str]
                ) -> Predictions:
    return Predictions(role_counts(con, filters), prediction_daily(con, filters, roles),
                       class_distribution(con, filters, roles),
                       confidence_histogram(con, filters, roles), shadow_agreement(con, filters))
