"""One dataset's night run without Prefect (`run_dataset_night` calling its stages directly),
on a real warehouse file, a real registered champion and a real drift report.

The champion is registered the day before the night, on stable data and without training
figures, so the policy keeps it: the night ingests, monitors and decides, and skips training
(the nightly flow with training is tests/system/test_nightly.py).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from models.data.datasets import BUILTIN
from models.data.generators.base import STABLE
from models.data.spec import feature_frame
from models.learning.catalogue import build_model
from models.registry.versions import promote, register_model
from models.reports.production import save_reference
from orchestration.night import DatasetNight, run_dataset_night
from orchestration.stages import NightPlan
from warehouse import connect
from warehouse.nights import completed_stages, finished_night

DATASET = "customer"
NIGHT = date(2026, 3, 10)
KEPT = {"ingest": "ok", "monitor": "ok", "decide": "ok", "train": "skipped",
        "promote": "skipped"}


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Any]:
    """A logistic regression on a stable day of the dataset, and its training frame."""
    entry = BUILTIN[DATASET]
    frame = entry.generate(date(2026, 3, 9), 1000, 7, STABLE)
    model = build_model(entry.spec, "logistic_regression").fit(
        feature_frame(frame, entry.spec), frame[entry.spec.target])
    return model, frame


@pytest.fixture
def champion(warehouse_path: Path, fitted: tuple[Any, Any], tmp_path: Path) -> str:
    model, frame = fitted
    spec = BUILTIN[DATASET].spec
    reference = save_reference(frame, spec, tmp_path / "reference.parquet")
    version = register_model(model, spec, algorithm="logistic_regression", metrics={},
                             training_batches=[f"{DATASET}-train"],
                             trained_at=datetime(2026, 3, 9, 3, 0),
                             attachments={"reference.parquet": reference})
    promote(DATASET, version.model_version, reason="test")
    return version.model_version


def _plan() -> NightPlan:
    return NightPlan(night=NIGHT, datasets=[DATASET], rows=400, seed=11)


def _runs() -> list[tuple[Any, ...]]:
    with connect(read_only=True) as con:
        return con.execute("SELECT stage, status, started_at, finished_at, detail FROM"
                           " nightly_runs ORDER BY stage").fetchall()


def test_a_night_runs_its_stages_in_order_and_records_each(champion: str) -> None:
    events: list[tuple[str, dict[str, str]]] = []
    row = run_dataset_night(_plan(), DATASET,
                            observe=lambda r, event: events.append((event, dict(r.stages))))
    assert isinstance(row, DatasetNight) and row.failed_stage is None
    assert row.stages == KEPT
    assert [event for event, _ in events] == ["start", *KEPT, "done"]
    assert events[2] == ("monitor", {"ingest": "ok", "monitor": "ok"})
    assert row.batch_status == "accepted" and row.batch_id
    assert row.share_drifted is not None and row.share_drifted < 0.5
    assert row.dataset_drift is False and row.report and Path(row.report).exists()
    assert row.accuracy is not None and 0.0 <= row.accuracy <= 1.0
    assert row.retrain is False and row.reason and row.reason.startswith("No retrain")
    assert row.challenger is None and not row.promoted and row.gate is None
    assert row.champion == champion
    assert completed_stages(NIGHT, DATASET) == KEPT
    details = {stage: detail for stage, _, _, _, detail in _runs()}
    assert details["ingest"].startswith(f"{row.batch_id}: 400 rows, accepted")
    assert f"champion={champion}" in details["monitor"] and "share_drifted=" in details["monitor"]
    assert details["train"] == "the policy decided not to retrain"
    found = finished_night(NIGHT, DATASET)
    assert found is not None and found.batch_id == row.batch_id and found.retrain is False


def test_a_finished_night_is_read_back_not_run_again(champion: str) -> None:
    first = run_dataset_night(_plan(), DATASET)
    recorded = _runs()
    calls: list[str] = []
    events: list[str] = []

    def call(stage: str, fn: Any) -> Any:
        calls.append(stage)
        return fn()

    again = run_dataset_night(_plan(), DATASET, call=call,
                              observe=lambda r, event: events.append(event))
    assert calls == [] and events == ["done"]
    assert _runs() == recorded                     # no stage recorded again
    assert again.stages == first.stages == KEPT
    assert (again.batch_id, again.batch_status, again.share_drifted, again.dataset_drift,
            again.report, again.retrain, again.champion) == (
        first.batch_id, first.batch_status, first.share_drifted, first.dataset_drift,
        first.report, first.retrain, first.champion)
    assert again.reason == f"{first.reason} (already done)"


def test_a_failed_stage_is_recorded_and_the_next_run_does_the_night_again(
        champion: str) -> None:
    plan = _plan()
    plan.drills = (f"{DATASET}:monitor",)
    failed = run_dataset_night(plan, DATASET)
    assert failed.failed_stage == "monitor"
    assert failed.stages == {"ingest": "ok", "monitor": "failed"}
    assert finished_night(NIGHT, DATASET) is None
    with connect(read_only=True) as con:
        error = con.execute("SELECT error FROM nightly_runs WHERE stage = 'monitor'").fetchone()
        alert = con.execute("SELECT severity FROM alerts WHERE kind = 'nightly_step'").fetchone()
    assert error is not None and "failure drill" in error[0] and alert == ("critical",)
    again = run_dataset_night(_plan(), DATASET)
    assert again.stages == KEPT and again.failed_stage is None
