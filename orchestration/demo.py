"""The main job on embedded defaults: a week of nights for the three built-in datasets.

It runs the same Prefect flows as production (`backfill` over the demo week, with the shipped
drift timeline) against Prefect's local ephemeral API, with training settings sized for a
small machine, and returns one summary row per night and dataset. While it runs,
`NightProgress` shows a row per night and dataset as its stages finish (each row formatted by
`orchestration.summary`).
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pandas as pd
from rich.console import Console, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from orchestration.summary import STAGE_NAMES, progress_line, summary_frame

if TYPE_CHECKING:
    from orchestration.night import DatasetNight, NightObserver

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
             rows: int | None = None, training: dict[str, Any] | None = None,
             observe: NightObserver | None = None) -> pd.DataFrame:
    """Run the demo's nights through the Prefect flows; one summary row per night and dataset.
    `observe` is told about each night and dataset as its stages finish (`NightProgress`)."""
    from orchestration.flows import backfill, demo_timeline_path

    end = start + timedelta(days=nights - 1)
    rows_out = backfill(start.isoformat(), end.isoformat(), None, demo_timeline_path(),
                        start.isoformat(), seed, rows, training or DEMO_TRAINING, observe)
    return summary_frame(rows_out)


class NightProgress:
    """Live progress of nights run in this process: on a terminal, the current night and
    dataset as a spinner row that fills in as its stages finish, each finished one printed
    above it; elsewhere (CI, logs) one plain line per finished night and dataset.

    Pass `observe` to `run_demo` or the `backfill`/`nightly` flows (a `NightObserver`)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self.started: dict[tuple[str, str], float] = {}
        self.current: tuple[DatasetNight, float] | None = None
        self.spinner = Spinner("dots")

    def __enter__(self) -> NightProgress:
        if self.console.is_terminal:
            self.live = Live(self, console=self.console, transient=True, refresh_per_second=4)
            self.live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.live is not None:
            self.live.stop()

    def __rich__(self) -> RenderableType:
        """The live row: the night and dataset under way, the stage it is in (the next one
        not finished: training can take minutes) and its elapsed seconds."""
        if self.current is None:
            return Text("")
        row, started = self.current
        under_way = next((name for stage, name in STAGE_NAMES.items()
                          if stage not in row.stages), None)
        line = progress_line(row) + (f"  {under_way} …" if under_way else "")
        self.spinner.update(text=Text(f"{line}  ({time.perf_counter() - started:.0f} s)"))
        return self.spinner

    def observe(self, row: DatasetNight, event: str) -> None:
        """A `NightObserver`: keep the row under way, print it once it is done."""
        key = (row.night, row.dataset)
        if event == "start":
            self.started[key] = time.perf_counter()
        started = self.started.get(key)
        if event != "done":
            self.current = (row, started if started is not None else time.perf_counter())
            return
        self.current = None
        seconds = None if started is None else time.perf_counter() - started
        self.console.print(progress_line(row, seconds, done=True), markup=False,
                           highlight=False)
