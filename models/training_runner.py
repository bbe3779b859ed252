"""Run the training flow from Python with `metaflow.Runner` (what `overnight train` and the
nightly Prefect task call), keeping Metaflow's datastore under the data home.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from warehouse import get_settings
from warehouse.errors import OvernightError

FLOW_FILE = Path(__file__).with_name("training_flow.py")


class TrainingRunError(OvernightError):
    """The training flow ran and failed; the message says which step and why."""


@dataclass(frozen=True)
class TrainingOutcome:
    pathspec: str
    model_version: str
    seconds: float


def metaflow_env() -> dict[str, str]:
    """Environment of a flow run: the datastore under the data home and a user name."""
    settings = get_settings()
    return {
        "OVERNIGHT_HOME": str(settings.home),
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(settings.metaflow_dir),
        "USERNAME": os.environ.get("USERNAME") or os.environ.get("USER") or "overnight",
    }


def run_training(dataset: str, *, show_output: bool = False, max_workers: int = 2,
                 **params: Any) -> TrainingOutcome:
    """Run TrainingFlow for one dataset and return its pathspec and registered version.

    `params` are the flow's parameters by name (trials, optimize, algorithms, seed, ...).
    """
    from metaflow import Runner, namespace

    from models.training_plan import load_window

    load_window(dataset, params.get("start_date"), params.get("end_date"))  # fail fast, clearly
    settings = get_settings()
    settings.ensure_dirs()
    env = metaflow_env()
    os.environ.update(env)             # the client below reads the same datastore
    with Runner(str(FLOW_FILE), show_output=show_output, env=env,
                cwd=str(settings.home)).run(dataset=dataset, max_workers=max_workers,
                                            **params) as running:
        run = running.run  # type: ignore[attr-defined]
        if run is None or not run.successful:
            raise TrainingRunError(_failure(running, dataset))
        namespace(None)
        finished = run.finished_at or run.created_at
        return TrainingOutcome(pathspec=run.pathspec, model_version=run.data.model_version,
                               seconds=(finished - run.created_at).total_seconds())


def _failure(running: Any, dataset: str) -> str:
    """One readable line about why a run failed (the last error line Metaflow printed)."""
    text = (running.stderr or "") + (running.stdout or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "failed" in line.lower()]
    detail = errors[-1] if errors else (lines[-1] if lines else "no output")
    return f"training of {dataset!r} failed: {detail[-400:]}"
