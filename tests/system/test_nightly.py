"""The nightly Prefect flow on three small datasets, under Prefect's own test harness, with
real Metaflow training runs, real drift reports and a real warehouse file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from warehouse import connect, migrate

pytestmark = pytest.mark.slow
TRAINING = {"trials": 1, "optimize": False, "cv_folds": 2, "window_days": 3,
            "algorithms": {"customer": "logistic_regression,dummy",
                           "medical": "logistic_regression,dummy",
                           "news": "naive_bayes,dummy"}}
ROWS = 1500


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Three nights: the first trains, the second is stable (with a failure drill on
    medical's monitor stage), the third brings concept drift to the customers."""
    from prefect.testing.utilities import prefect_test_harness

    root = tmp_path_factory.mktemp("nightly")
    timeline = root / "timeline.yaml"
    timeline.write_text(yaml.safe_dump({"name": "test", "datasets": {
        "customer": [{"scenario": "concept_drift", "from_day": 2, "to_day": 2}]}}))
    with pytest.MonkeyPatch.context() as patch, prefect_test_harness():
        patch.setenv("OVERNIGHT_HOME", str(root / "home"))
        with connect() as con:
            migrate(con)
        from orchestration.flows import backfill, nightly

        common = {"timeline_file": str(timeline), "timeline_start": "2026-11-16", "rows": ROWS,
                  "training": TRAINING}
        results = {
            "first": nightly("2026-11-16", **common),
            "stable": nightly("2026-11-17", drills=["medical:monitor"], **common),
            "drift": nightly("2026-11-18", **common),
        }
        tables = ("batches", "retraining_decisions", "model_versions", "drift_reports",
                  "nightly_runs", "alerts")

        def counts() -> dict[str, int]:
            with connect(read_only=True) as con:
                return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                        for t in tables}

        with connect(read_only=True) as con:
            results["failed_error"] = con.execute(
                "SELECT error FROM nightly_runs WHERE night_id = 'night-2026-11-17'"
                " AND dataset = 'medical' AND stage = 'monitor'").fetchone()[0]
        before = counts()
        # the first backfill completes medical's failed night; a second one changes nothing
        events: list[tuple[str, str, str, dict[str, str]]] = []
        results["backfill"] = backfill("2026-11-16", "2026-11-18", None, str(timeline),
                                       "2026-11-16", 42, ROWS, TRAINING,
                                       lambda row, event: events.append(
                                           (row.night, row.dataset, event, dict(row.stages))))
        results["events"] = events
        middle = counts()
        backfill("2026-11-16", "2026-11-18", None, str(timeline), "2026-11-16", 42, ROWS,
                 TRAINING)
        yield {**results, "counts": (before, middle, counts()), "home": root / "home"}


def _by_dataset(rows: list[dict]) -> dict[str, dict]:
    return {r["dataset"]: r for r in rows}


def test_first_night_trains_and_promotes_every_champion(nights) -> None:
    first = _by_dataset(nights["first"])
    for dataset in ("customer", "medical", "news"):
        row = first[dataset]
        assert row["stages"] == {"ingest": "ok", "monitor": "skipped", "decide": "ok",
                                 "train": "ok", "promote": "ok"}, row
        assert row["retrain"] and "missing champion" in row["reason"]
        assert row["promoted"] and row["champion"] == f"{dataset}-v1"


def test_stable_night_keeps_the_champions(nights) -> None:
    stable = _by_dataset(nights["stable"])
    for dataset in ("customer", "news"):
        row = stable[dataset]
        assert row["stages"]["monitor"] == "ok" and row["share_drifted"] is not None
        assert row["retrain"] is False, row["reason"]
        assert row["accuracy"] is not None and Path(row["report"]).exists()


def test_a_failing_stage_is_retried_recorded_and_alone(nights) -> None:
    medical = _by_dataset(nights["stable"])["medical"]
    assert medical["failed_stage"] == "monitor"
    error = nights["failed_error"]
    with connect(read_only=True) as con:
        alert = con.execute("SELECT severity FROM alerts WHERE kind = 'nightly_step'"
                            " AND dataset = 'medical'").fetchone()
    assert "failure drill" in error and "after 2 attempts" in error
    assert alert == ("critical",)
    assert _by_dataset(nights["stable"])["customer"]["stages"]["decide"] == "ok"


def test_drifting_night_retrains_and_the_gate_decides(nights) -> None:
    customer = _by_dataset(nights["drift"])["customer"]
    assert customer["retrain"], customer["reason"]
    assert "accuracy" in customer["reason"] or "drift" in customer["reason"]
    assert customer["stages"]["train"] == "ok" and customer["stages"]["promote"] == "ok"
    assert customer["challenger"] == "customer-v2"
    assert customer["gate"].startswith(("passed", "refused"))
    with connect(read_only=True) as con:
        row = con.execute("SELECT passed, reasons FROM validations WHERE challenger_version ="
                          " 'customer-v2'").fetchone()
    assert row is not None and (row[0] or row[1] != "[]")


def test_backfill_is_idempotent(nights) -> None:
    before, middle, after = nights["counts"]
    assert middle == after                       # re-running done nights adds nothing
    assert before["batches"] == middle["batches"]
    assert len(nights["backfill"]) == 9
    medical = _by_dataset(nights["backfill"][3:6])["medical"]
    assert medical["failed_stage"] is None and medical["stages"]["monitor"] == "ok"


def test_backfill_tells_its_observer_as_stages_finish(nights) -> None:
    events = nights["events"]
    assert [(n, d) for n, d, event, _ in events if event == "done"] == [
        (n, d) for n in ("2026-11-16", "2026-11-17", "2026-11-18")
        for d in ("customer", "medical", "news")]
    # medical's failed night runs again, stage by stage; the nights already done just report
    medical = [(event, stages) for n, d, event, stages in events
               if (n, d) == ("2026-11-17", "medical")]
    assert [event for event, _ in medical] == ["start", "ingest", "monitor", "decide",
                                               "train", "promote", "done"]
    assert medical[2][1] == {"ingest": "ok", "monitor": "ok"}
    assert len(events) == 8 + len(medical)


def test_demo_command_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "OVERNIGHT_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    out = subprocess.run([str(Path(sys.executable).parent / "overnight"), "demo", "--nights",
                          "2", "--rows", "600"], capture_output=True, text=True, env=env,
                         timeout=1500)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "overnight demo: 2 nights" in out.stdout and "customer-v1" in out.stdout
    # off a terminal, the live progress is one line per finished night and dataset
    progress = [line for line in out.stderr.splitlines() if line.startswith("2026-11-1")]
    assert [line.split()[:2] for line in progress] == [
        [n, d] for n in ("2026-11-16", "2026-11-17") for d in ("customer", "medical", "news")]
    assert "decide: retrain" in progress[0] and "champion customer-v1" in progress[0]
    assert (tmp_path / "home" / "reports" / "drift").exists()
