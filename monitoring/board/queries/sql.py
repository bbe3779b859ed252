"""What every query module of the board shares: the sidebar's filters and how SQL runs.

Two ways to ask. `report` runs a named report of `warehouse.reports` (the CLI's question,
asked once for both) and keeps the rows within the sidebar's filters; `run_sql` runs a
board-only query with the filters as bound parameters (`scope` writes its WHERE clause).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import pandas as pd

from warehouse.reports import run_report


@dataclass(frozen=True)
class Filters:
    """The sidebar's choice: datasets (None = all) and an inclusive date range."""

    datasets: tuple[str, ...] | None = None
    start: date | None = None
    end: date | None = None

    def params(self) -> dict[str, Any]:
        return {"datasets": None if self.datasets is None else list(self.datasets),
                "start": self.start, "end": self.end}


_PARAM = re.compile(r"\$(\w+)")


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
            ) -> pd.DataFrame:
    """Run SQL with only the parameters it names bound (DuckDB refuses unused ones)."""
    used = set(_PARAM.findall(sql))
    bound = {k: v for k, v in (params or {}).items() if k in used}
    return con.execute(sql, bound).df() if bound else con.execute(sql).df()


def scope(day: str | None, dataset: str = "dataset", keep_global: bool = False) -> str:
    """The WHERE clause of the sidebar filters, over a dataset column and a date expression."""
    datasets = f"($datasets::VARCHAR[] IS NULL OR list_contains($datasets::VARCHAR[], {dataset})"
    datasets += f" OR {dataset} IS NULL)" if keep_global else ")"
    if day is None:
        return datasets
    return (f"{datasets} AND ($start::DATE IS NULL OR {day} >= $start::DATE)"
            f" AND ($end::DATE IS NULL OR {day} <= $end::DATE)")


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    return row[0] if row else None


def metric(column: str, name: str) -> str:
    """A number of a JSON metrics column as a column of its own."""
    return f"TRY_CAST({column} ->> '$.{name}' AS DOUBLE) AS {name}"


def within(frame: pd.DataFrame, filters: Filters, day: str | None = None,
           keep_global: bool = False) -> pd.DataFrame:
    """The rows of the chosen datasets (and, with `keep_global`, those of none) whose `day`
    column (a date or a timestamp) falls in the date range: `scope`'s rule, on a frame."""
    keep = pd.Series(True, index=frame.index)
    if filters.datasets is not None:
        chosen = frame["dataset"].isin(list(filters.datasets))
        keep &= (chosen | frame["dataset"].isna()) if keep_global else chosen
    if day is not None:
        days = pd.to_datetime(frame[day]).dt.normalize()
        if filters.start is not None:
            keep &= days >= pd.Timestamp(filters.start)
        if filters.end is not None:
            keep &= days <= pd.Timestamp(filters.end)
    return frame[keep].reset_index(drop=True)


def report(con: duckdb.DuckDBPyConnection, name: str, filters: Filters | None = None,
           day: str | None = None, keep_global: bool = False, **params: Any) -> pd.DataFrame:
    """A named report of `warehouse.reports` over every dataset (its other parameters bound),
    kept `within` the filters when they are given."""
    frame = run_report(con, name, params)
    return frame if filters is None else within(frame, filters, day, keep_global)
