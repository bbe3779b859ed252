"""The main job on embedded defaults: a week of nights for the three built-in datasets.

It runs the same Prefect flows as production (`backfill` over the demo week, with the shipped
drift timeline) against Prefect's local ephemeral API, with training settings sized for a
small machine, and returns one summary row per night and dataset.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd

DEMO_START = date(2026, 11, 16)
DEMO_NIGHTS = 7
DEMO_TRAINING: dict[str, Any] = {
    "trials": 4, "optimize": True, "cv_folds": 3, "time_budget": 20.0, "window_days": 3,
    "max_workers": 2,
    "algorithms": {
        "customer": "logistic_regression,random_forest,knn,dummy",
        "medical": "logistic_regression,svm,dummy",
        "news": "naive_bayes,sgd,dummy",
    },
}


def run_demo(start: date = DEMO_START, nights: int = DEMO_NIGHTS, seed: int = 42,
             rows: int | None = None, training: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run the demo's nights through the Prefect flows; one summary row per night and dataset."""
    from orchestration.flows import backfill, demo_timeline_path

    end = start + timedelta(days=nights - 1)
    rows_out = backfill(start.isoformat(), end.isoformat(), None, demo_timeline_path(),
                        start.isoformat(), seed, rows, training or DEMO_TRAINING)
    return summary_frame(rows_out)


def summary_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The printed table: per night and dataset, drift, decision, champion, accuracy."""
    table = pd.DataFrame([{
        "night": r["night"], "dataset": r["dataset"],
        "batch": r["batch_status"] or "-",
        "drift": "-" if r["drift_share"] is None else f"{r['drift_share']:.0%}"
        + (" DRIFT" if r["dataset_drift"] else ""),
        "accuracy": "-" if r["accuracy"] is None else f"{r['accuracy']:.3f}",
        "decision": ("failed: " + r["failed_stage"]) if r["failed_stage"] else
        ("retrain" if r["retrain"] else "keep"),
        "why": (r["reason"] or "")[:60],
        "gate": "promoted" if r["promoted"] else ("refused" if r["gate"] else "-"),
        "champion": r["champion"] or "-",
    } for r in rows])
    return table
