"""The main job on embedded defaults: a week of nights for the three built-in datasets.

For now a night generates each dataset's batch along the shipped drift timeline and runs its
quality checks into the warehouse; the later stages (drift, retraining, promotion) join the
night as the nightly flow grows.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from models.batches import generate_batch
from models.datasets import BUILTIN
from models.scenarios import DEMO_TIMELINE, load_timeline

DEMO_START = date(2026, 11, 16)
DEMO_NIGHTS = 7


def run_demo(start: date = DEMO_START, nights: int = DEMO_NIGHTS, seed: int = 42,
             rows: int | None = None) -> pd.DataFrame:
    """Run the demo's nights in order and return one summary row per night and dataset."""
    timeline = load_timeline(DEMO_TIMELINE).with_start(start)
    summary = []
    for night in range(nights):
        when = start + timedelta(days=night)
        for dataset in BUILTIN:
            batch = generate_batch(dataset, when, n_rows=rows, seed=seed,
                                   drift=timeline.drift_for(dataset, when),
                                   scenario=timeline.label_for(dataset, when))
            summary.append({
                "night": when.isoformat(), "dataset": dataset,
                "scenario": timeline.label_for(dataset, when), "rows": batch.n_rows,
                "status": batch.status + (" (already loaded)" if batch.already_present else ""),
            })
    return pd.DataFrame(summary)
