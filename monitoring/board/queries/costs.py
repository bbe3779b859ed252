"""The costs page's questions: quality against cost per model version (the `model_costs`
report priced with each dataset's policy, `monitoring.costs`), what each task of a training
run cost, and serving cost per day and model version.

A warehouse older than the cost tables (migration 7) has no figures yet: the page says so
instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from monitoring.board.queries.sql import Filters, run_sql, scope, within
from monitoring.costs import model_costs
from monitoring.policy import load_policies, policy_for
from warehouse.serving_costs import has_cost_tables


def version_costs(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Every model version of the chosen datasets with its quality and priced costs."""
    datasets = None if filters.datasets is None else list(filters.datasets)
    return within(model_costs(con, datasets), Filters(filters.datasets))


def training_tasks(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Each task of each training run (start, one per branch, join) and the run's total."""
    return run_sql(con, (
        "SELECT dataset, run_id, model_version, step, branch, status, attempts, cpu_seconds,"
        " wall_seconds, peak_rss_mb, gb_hours FROM training_costs WHERE " +
        scope("CAST(recorded_at AS DATE)") +
        " ORDER BY recorded_at DESC, run_id, step = 'total', step, branch"), filters.params())


def serving_daily(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Serving CPU and predictions per day and model version, all workers together."""
    return run_sql(con, (
        "SELECT dataset, CAST(interval_end AS DATE) AS day, model_version,"
        " sum(predictions) AS predictions, sum(cpu_seconds) AS cpu_seconds,"
        " sum(gb_hours) AS gb_hours, count(DISTINCT worker) AS workers,"
        " 1000 * sum(cpu_seconds) / nullif(sum(predictions), 0) AS cpu_seconds_per_1000"
        " FROM serving_costs WHERE " + scope("CAST(interval_end AS DATE)") +
        " GROUP BY ALL ORDER BY day, dataset, model_version"), filters.params())


def prices(datasets: list[str]) -> pd.DataFrame:
    """The policy's prices and alert share of each dataset (what the money is made of)."""
    policies = load_policies()
    return pd.DataFrame([{"dataset": d, "cpu_hour_price": p.cpu_hour_price,
                          "gb_hour_price": p.gb_hour_price, "max_cost_rise": p.max_cost_rise}
                         for d in datasets for p in [policy_for(d, policies)]],
                        columns=["dataset", "cpu_hour_price", "gb_hour_price",
                                 "max_cost_rise"])


@dataclass(frozen=True)
class Costs:
    available: bool               # the warehouse has the cost tables
    versions: pd.DataFrame
    training: pd.DataFrame
    serving: pd.DataFrame
    prices: pd.DataFrame


def costs(con: duckdb.DuckDBPyConnection, filters: Filters) -> Costs:
    if not has_cost_tables(con):
        empty = pd.DataFrame()
        return Costs(False, empty, empty, empty, empty)
    versions = version_costs(con, filters)
    return Costs(True, versions, training_tasks(con, filters), serving_daily(con, filters),
                 prices(sorted(set(versions["dataset"]))))
