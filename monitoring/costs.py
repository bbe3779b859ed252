"""The cost of every model, in money: quality against cost per model version, and the alert
when a promotion made serving dearer.

The warehouse holds physical figures only (`training_costs`: CPU seconds, wall time, peak
memory of each training task; `serving_costs`: CPU seconds, GB-hours and predictions per
serving worker, interval and model version). Prices live in the policy
(`cpu_hour_price`, `gb_hour_price` in monitoring/policies.yaml, per dataset like every other
key), so a change of price re-prices the whole history rather than only what comes next.

    money = CPU seconds / 3600 x cpu_hour_price + GB-hours x gb_hour_price
    cost per 1000 predictions = 1000 x money of the serving rows / their predictions

`model_costs` is the `model_costs` named report priced with each dataset's policy.
`serving_cost_rise` compares the champion's cost per 1000 predictions since its promotion with
what its predecessor cost before it; `alert_serving_cost_rise` (called by the night) raises
one `serving_cost` warning per promotion when the rise is above the policy's
`max_cost_rise`. Too few predictions on either side (below `MIN_PREDICTIONS`) say nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd

from monitoring.alerts import Alert, raise_alert
from monitoring.policy import RetrainingPolicy, load_policies, policy_for
from warehouse import connect
from warehouse.reports import run_report
from warehouse.serving_costs import has_cost_tables

MIN_PREDICTIONS = 100       # each side of a promotion, before its cost per 1000 means much
ROLLBACK = "rollback:"      # how `models.registry.versions.rollback` words its champion change


def price_params(policy: RetrainingPolicy) -> dict[str, float]:
    return {"cpu_hour_price": policy.cpu_hour_price, "gb_hour_price": policy.gb_hour_price}


def model_costs(con: duckdb.DuckDBPyConnection, datasets: list[str] | None = None,
                policies: dict[str, RetrainingPolicy] | None = None) -> pd.DataFrame:
    """The `model_costs` report of each dataset, priced with that dataset's policy."""
    policies = load_policies() if policies is None else policies
    if datasets is None:
        datasets = [row[0] for row in con.execute(
            "SELECT DISTINCT dataset FROM model_versions ORDER BY dataset").fetchall()]
    frames = [run_report(con, "model_costs", {"dataset": dataset,
                                              **price_params(policy_for(dataset, policies))})
              for dataset in datasets]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return run_report(con, "model_costs", {"dataset": "", "cpu_hour_price": 0,
                                               "gb_hour_price": 0})
    return pd.concat(frames, ignore_index=True)


# One version's serving cost within a window of time (the rows of its workers' intervals).
_WINDOW_COST = """
SELECT coalesce(sum(predictions), 0) AS predictions,
       1000 * (sum(cpu_seconds) / 3600 * $cpu_hour_price + sum(gb_hours) * $gb_hour_price)
           / nullif(sum(predictions), 0) AS cost_per_1000
FROM serving_costs
WHERE model_version = $version
  AND ($after::TIMESTAMP IS NULL OR interval_end >= $after::TIMESTAMP)
  AND ($before::TIMESTAMP IS NULL OR interval_start <= $before::TIMESTAMP)
"""

_LAST_PROMOTION = """
SELECT model_version, previous_version, changed_at, reason FROM alias_history
WHERE dataset = $dataset AND alias = 'champion' AND model_version IS NOT NULL
ORDER BY change_id DESC LIMIT 1
"""


@dataclass(frozen=True)
class CostRise:
    """The champion's cost per 1000 predictions since its promotion against its
    predecessor's before it, and whether the rise is beyond the policy's share."""

    dataset: str
    champion: str
    previous: str
    promoted_at: datetime
    champion_cost: float | None       # money per 1000 predictions
    previous_cost: float | None
    champion_predictions: int
    previous_predictions: int
    rise: float | None                # champion / previous - 1
    max_rise: float
    fired: bool
    note: str


def _window(con: duckdb.DuckDBPyConnection, version: str, prices: dict[str, float],
            after: datetime | None = None, before: datetime | None = None
            ) -> tuple[int, float | None]:
    row = con.execute(_WINDOW_COST, {"version": version, "after": after, "before": before,
                                     **prices}).fetchone()
    assert row is not None          # an aggregate always answers
    return int(row[0]), None if row[1] is None else float(row[1])


def serving_cost_rise(con: duckdb.DuckDBPyConnection, dataset: str,
                      policy: RetrainingPolicy) -> CostRise | None:
    """The last promotion's effect on the cost per 1000 predictions (None: no promotion with
    a predecessor yet, or the last change of champion was a rollback, which is no promotion:
    it puts back a model whose cost was already known)."""
    if not has_cost_tables(con):
        return None
    row = con.execute(_LAST_PROMOTION, {"dataset": dataset}).fetchone()
    if row is None or row[1] is None or str(row[3] or "").startswith(ROLLBACK):
        return None
    champion, previous, promoted_at, _reason = row
    prices = price_params(policy)
    new_n, new_cost = _window(con, champion, prices, after=promoted_at)
    old_n, old_cost = _window(con, previous, prices, before=promoted_at)
    rise = None
    if new_cost is not None and old_cost:
        rise = new_cost / old_cost - 1
    enough = new_n >= MIN_PREDICTIONS and old_n >= MIN_PREDICTIONS
    fired = enough and rise is not None and rise > policy.max_cost_rise
    if not enough:
        note = (f"too few predictions to compare serving costs ({champion}: {new_n} since "
                f"its promotion, {previous}: {old_n} before it; {MIN_PREDICTIONS} needed)")
    elif rise is None:
        note = f"no serving cost measured for {champion} or {previous}"
    else:
        note = (f"cost per 1000 predictions {'rose' if rise >= 0 else 'fell'} by "
                f"{abs(rise):.0%} after {champion} replaced {previous} "
                f"({old_cost:.6g} -> {new_cost:.6g}; alert above +{policy.max_cost_rise:.0%})")
    return CostRise(dataset, champion, previous, promoted_at, new_cost, old_cost, new_n, old_n,
                    rise, policy.max_cost_rise, fired, note)


def alert_serving_cost_rise(dataset: str, night: date | None = None,
                            policy: RetrainingPolicy | None = None) -> Alert | None:
    """The night's check: one `serving_cost` warning per promotion whose cost per 1000
    predictions rose by more than the policy's `max_cost_rise` (None: no alert)."""
    policy = policy or policy_for(dataset)
    with connect(read_only=True) as con:
        found = serving_cost_rise(con, dataset, policy)
    if found is None or not found.fired:
        return None
    details: dict[str, Any] = {**asdict(found), "promoted_at": found.promoted_at.isoformat(),
                               "night": night.isoformat() if night else None}
    return raise_alert("serving_cost", f"{dataset}: {found.note}", severity="warning",
                       dataset=dataset, details=details,
                       dedupe_key=f"serving_cost:{dataset}:{found.champion}")
