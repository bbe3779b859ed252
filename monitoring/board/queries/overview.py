"""The overview page's questions: each dataset's champion, its latest night, its open alerts."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from monitoring.board.queries.sql import Filters, report, run_sql, scope
from warehouse.nights import STAGES


def champions(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Each dataset's champion now, with what it is and how it scored at training (the
    `champions` report)."""
    found = report(con, "champions", filters)
    return found.rename(columns={"updated_at": "promoted_at"})


def last_nights(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Every stage of each dataset's latest night within the date range."""
    return run_sql(con, (
        "WITH latest AS (SELECT dataset, max(night_date) AS night_date FROM nightly_runs"
        " WHERE " + scope("night_date") + " GROUP BY dataset)"
        " SELECT n.dataset, n.night_date, n.stage, n.status, n.duration_seconds, n.detail,"
        " n.error FROM nightly_runs n JOIN latest USING (dataset, night_date)"
        " ORDER BY n.dataset, n.started_at"), filters.params())


def open_alert_counts(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Open alerts per dataset ('(all)' for global ones) and severity, counted from the
    `alerts` report (open now, whatever the date range)."""
    found = report(con, "alerts", filters, keep_global=True, status="open")
    named = found.assign(dataset=found["dataset"].fillna("(all)"))
    return named.groupby(["dataset", "severity"]).size().reset_index(name="n")


def stage_matrix(runs: pd.DataFrame) -> pd.DataFrame:
    """Stages as columns (in running order), one row per dataset and night: status or ''."""
    if runs.empty:
        return pd.DataFrame(columns=["dataset", "night_date", *STAGES])
    wide = runs.pivot_table(index=["dataset", "night_date"], columns="stage", values="status",
                            aggfunc="first").reset_index()
    stages = [s for s in STAGES if s in wide.columns] + sorted(
        c for c in wide.columns if c not in (*STAGES, "dataset", "night_date"))
    wide = wide.reindex(columns=["dataset", "night_date", *stages]).fillna("")
    wide.columns.name = None
    return wide


@dataclass(frozen=True)
class Overview:
    champions: pd.DataFrame
    last_nights: pd.DataFrame
    alerts: pd.DataFrame


def overview(con: duckdb.DuckDBPyConnection, filters: Filters) -> Overview:
    return Overview(champions(con, filters), last_nights(con, filters),
                    open_alert_counts(con, filters))
