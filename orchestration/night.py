"""One night for one dataset, as plain stage functions the Prefect flows call.

    ingest    generate the night's batch (built-in datasets, along the drift timeline) or load
              the files waiting in landing/DATASET/ (a user's own dataset); quality checks
    monitor   score the batch with the champion (labelled rows become performance evidence)
              and write the drift report against the champion's reference data
    decide    the retraining policy's decision, with every trigger's evidence
    train     the Metaflow training flow over the recent window, registering a challenger
    promote   the validation gate on the challenger; promotion only when it passes

Each stage's outcome is kept in `nightly_runs`; a stage's failure is recorded and alerted and
stops only this dataset's night. Nothing here knows about Prefect.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from models.data.batches import StoredBatch, generate_batch, load_batch
from models.data.datasets import BUILTIN, get_spec
from models.data.generators.base import STABLE
from models.data.ingest import ingest_file
from models.data.scenarios import Timeline
from models.registry.versions import get_alias, load_model
from monitoring.alerts import (
    alert_failed_gate,
    alert_failed_step,
    alert_quarantine,
    alerts_for_decision,
    raise_alert,
)
from monitoring.collect import alert_rejection
from monitoring.gate import promote_validated, validate
from monitoring.performance import record_batch_labels
from monitoring.policy import decide
from warehouse import OvernightError, WarehouseError, connect, get_settings, transaction
from warehouse.landing import reject_file

STAGES = ("ingest", "monitor", "decide", "train", "promote")


class StageSkipped(Exception):
    """A stage that has nothing to do tonight (recorded as skipped, not failed)."""


@dataclass
class TrainingSettings:
    """How the nightly loop calls the training flow."""

    trials: int = 20
    optimize: bool = True
    cv_folds: int = 3
    time_budget: float = 120.0
    window_days: int = 7
    max_workers: int = 2
    algorithms: dict[str, str] = field(default_factory=dict)   # per dataset, '' = default


@dataclass
class NightPlan:
    night: date
    datasets: list[str]
    timeline: Timeline | None = None
    seed: int = 42
    rows: int | None = None
    force_retrain: bool = False
    training: TrainingSettings = field(default_factory=TrainingSettings)
    drills: tuple[str, ...] = ()        # "dataset:stage" pairs that raise (failure drills)

    @property
    def night_id(self) -> str:
        return f"night-{self.night.isoformat()}"


@dataclass
class DatasetNight:
    """What one dataset's night did: the row of the demo's summary table."""

    night: str
    dataset: str
    batch_id: str | None = None
    batch_status: str | None = None
    drift_share: float | None = None
    dataset_drift: bool | None = None
    report: str | None = None
    accuracy: float | None = None
    retrain: bool | None = None
    reason: str | None = None
    challenger: str | None = None
    promoted: bool = False
    gate: str | None = None
    champion: str | None = None
    failed_stage: str | None = None
    stages: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def record_stage(plan: NightPlan, dataset: str, stage: str, status: str, *, started: datetime,
                 seconds: float, detail: str | None = None, error: str | None = None,
                 flow_run_id: str | None = None) -> None:
    """One nightly_runs row per (night, dataset, stage); a re-run replaces it."""
    with transaction() as con:
        con.execute("DELETE FROM nightly_runs WHERE night_id = ? AND dataset = ? AND stage = ?",
                    [plan.night_id, dataset, stage])
        con.execute("INSERT INTO nightly_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [plan.night_id, plan.night, dataset, stage, status, started, _now(),
                     seconds, detail, error, flow_run_id])


def completed_stages(plan: NightPlan, dataset: str) -> dict[str, str]:
    with connect(read_only=True) as con:
        rows = con.execute("SELECT stage, status FROM nightly_runs WHERE night_id = ?"
                           " AND dataset = ?", [plan.night_id, dataset]).fetchall()
    return dict(rows)


def drill(plan: NightPlan, dataset: str, stage: str, attempt: int = 1) -> None:
    if f"{dataset}:{stage}" in plan.drills:
        raise RuntimeError(f"failure drill: {dataset} {stage} configured to raise "
                           f"(attempt {attempt})")


# ------------------------------------------------------------------------------- stages


def ingest_stage(plan: NightPlan, dataset: str) -> StoredBatch:
    """Tonight's batch: generated for built-in datasets, from landing files for the others."""
    if dataset in BUILTIN:
        timeline = plan.timeline
        drift = timeline.drift_for(dataset, plan.night) if timeline else STABLE
        scenario = timeline.label_for(dataset, plan.night) if timeline else "stable"
        batch = generate_batch(dataset, plan.night, n_rows=plan.rows, seed=plan.seed,
                               scenario=scenario, drift=drift)
    else:
        batch = ingest_landing_files(dataset, plan.night)
    alert_quarantine(batch)
    return batch


def ingest_landing_files(dataset: str, night: date) -> StoredBatch:
    """Load the files a user dropped in landing/DATASET/ (oldest first); keep them after."""
    folder = get_settings().landing_dir / dataset
    files = sorted([*folder.glob("*.csv"), *folder.glob("*.parquet")],
                   key=lambda p: p.stat().st_mtime) if folder.exists() else []
    if not files:
        raise StageSkipped(f"no new file in {folder}")
    done = folder / "ingested"
    done.mkdir(exist_ok=True)
    batch = None
    rejected = []
    for path in files:
        try:
            batch = ingest_file(dataset, path, batch_date=night)
        except WarehouseError:          # a locked warehouse is not the file's fault: it stays
            raise
        except (OvernightError, ValueError) as error:  # a bad file never blocks the rest
            rejected.append(reject_file(path, dataset, str(error), alert_rejection))
            continue
        shutil.move(str(path), done / path.name)
    if batch is None:
        raise StageSkipped(f"every file in {folder} was rejected ({len(rejected)}, kept in "
                           f"landing/_rejected/{dataset}/ with their reasons)")
    return batch


def monitor_stage(plan: NightPlan, dataset: str, batch: StoredBatch) -> dict[str, Any]:
    """Score the batch with the champion (labels become evidence) and report its drift."""
    if batch.status != "accepted":
        raise StageSkipped(f"batch {batch.batch_id} is quarantined")
    champion = get_alias(dataset, "champion")
    if champion is None:
        raise StageSkipped("no champion yet: nothing to monitor")
    with connect(read_only=True) as con:
        spec = get_spec(con, dataset)
    frame = load_batch(spec, batch.batch_id)
    model, _ = load_model(champion)
    predicted = [str(p) for p in model.predict(frame[spec.feature_names])]
    labels = [None if v is None or v != v else str(v) for v in frame[spec.target]]
    record_batch_labels(dataset, batch.batch_id, champion, predicted, labels,
                        datetime.combine(plan.night, datetime.min.time()))
    labelled = [(p, t) for p, t in zip(predicted, labels, strict=True) if t is not None]
    accuracy = (sum(p == t for p, t in labelled) / len(labelled)) if labelled else None
    from monitoring.drift import run_drift_report

    summary = run_drift_report(dataset, batch.batch_id, champion, night_date=plan.night)
    result = {"champion": champion, "accuracy": accuracy, **_drift_fields(summary)}
    if result.get("dataset_drift"):
        raise_alert("drift", f"{dataset} {plan.night}: dataset drift, "
                    f"{result['drift_share']:.0%} of columns drifted", dataset=dataset,
                    details=result, dedupe_key=f"drift:{dataset}:{plan.night}")
    return result


def _drift_fields(summary: Any) -> dict[str, Any]:
    data = summary.as_dict() if hasattr(summary, "as_dict") else dict(summary)
    return {"drift_share": data.get("share_drifted"), "dataset_drift": data.get("dataset_drift"),
            "report": data.get("html_path")}


def decide_stage(plan: NightPlan, dataset: str, batch: StoredBatch | None) -> dict[str, Any]:
    decision = decide(dataset, plan.night, batch.batch_id if batch else None)
    alerts_for_decision(decision)
    retrain = decision.retrain or plan.force_retrain
    reason = decision.reason if decision.retrain or not plan.force_retrain else (
        f"forced retrain ({decision.reason})")
    return {"retrain": retrain, "reason": reason}


def train_stage(plan: NightPlan, dataset: str) -> str:
    """Run the training flow on the recent window; returns the registered challenger."""
    from models.training.runner import run_training

    settings = plan.training
    start = plan.night - timedelta(days=settings.window_days - 1)
    outcome = run_training(
        dataset, trials=settings.trials, optimize=settings.optimize, cv_folds=settings.cv_folds,
        time_budget=settings.time_budget, max_workers=settings.max_workers,
        algorithms=settings.algorithms.get(dataset, ""), start_date=start.isoformat(),
        end_date=plan.night.isoformat(), seed=plan.seed)
    return outcome.model_version


def promote_stage(plan: NightPlan, dataset: str, challenger: str) -> dict[str, Any]:
    result = validate(dataset, challenger, night=plan.night.isoformat())
    if not result.passed:
        alert_failed_gate(dataset, challenger, result.reasons)
        return {"promoted": False, "gate": "refused: " + "; ".join(result.reasons)}
    promote_validated(dataset, challenger, reason=f"passed the gate on {plan.night} "
                      f"(score {result.score:.2f})")
    return {"promoted": True, "gate": f"passed (score {result.score:.2f})"}


# ------------------------------------------------------------------------ one dataset


StageRunner = Callable[[str, Callable[[], Any]], Any]
NightObserver = Callable[[DatasetNight, str], None]
"""Told `(row, event)` as one dataset's night goes, for live progress: event is "start", then
a stage's name once it finished (ok, skipped or failed: `row.stages` says which, and the row
already holds what the stage found), then "done" with the final row."""


def run_dataset_night(plan: NightPlan, dataset: str, call: StageRunner | None = None,
                      observe: NightObserver | None = None) -> DatasetNight:
    """All stages of one dataset's night, each recorded; a failure stops only this dataset.

    `call(stage, fn)` runs one stage (the Prefect flow passes one that runs it as a task with
    retries); by default the stage function is called directly. `observe` (optional) is
    told about the night as its stages finish (see `NightObserver`).
    """
    call = call or (lambda stage, fn: fn())
    tell = _safe(observe)
    done = recorded_night(plan, dataset)
    if done is not None:
        tell(done, "done")
        return done
    out = DatasetNight(night=plan.night.isoformat(), dataset=dataset)
    tell(out, "start")

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        def drilled() -> Any:
            drill(plan, dataset, name)
            return fn()

        started, clock = _now(), time.perf_counter()
        try:
            value = call(name, drilled)
        except StageSkipped as skipped:
            record_stage(plan, dataset, name, "skipped", started=started,
                         seconds=time.perf_counter() - clock, detail=str(skipped))
            out.stages[name] = "skipped"
            tell(out, name)
            return None
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            record_stage(plan, dataset, name, "failed", started=started,
                         seconds=time.perf_counter() - clock, error=message[:2000])
            alert_failed_step(dataset, plan.night, name, message[:500])
            out.stages[name] = "failed"
            out.failed_stage = name
            tell(out, name)
            raise
        record_stage(plan, dataset, name, "ok", started=started,
                     seconds=time.perf_counter() - clock, detail=_detail(name, value))
        out.stages[name] = "ok"
        _keep(out, name, value)
        tell(out, name)
        return value

    def skip(name: str, why: str) -> None:
        _skip(plan, dataset, name, why, out)
        tell(out, name)

    try:
        batch = stage("ingest", lambda: ingest_stage(plan, dataset))
        if batch is not None:
            stage("monitor", lambda: monitor_stage(plan, dataset, batch))
        else:
            skip("monitor", "no batch tonight")
        decision = stage("decide", lambda: decide_stage(plan, dataset, batch))
        challenger = None
        if decision["retrain"]:
            challenger = stage("train", lambda: train_stage(plan, dataset))
        else:
            skip("train", "the policy decided not to retrain")
        if challenger:
            stage("promote", lambda: promote_stage(plan, dataset, challenger))
        else:
            skip("promote", "no challenger tonight")
    except Exception:  # recorded and alerted by `stage`; the other datasets go on
        pass
    out.champion = get_alias(dataset, "champion")
    tell(out, "done")
    return out


def _safe(observe: NightObserver | None) -> NightObserver:
    """The observer, made harmless: a broken progress display must not change the night."""
    def tell(row: DatasetNight, event: str) -> None:
        if observe is None:
            return
        try:
            observe(row, event)
        except Exception:
            logging.getLogger(__name__).warning("night observer failed on %s %s %s",
                                                row.night, row.dataset, event, exc_info=True)
    return tell


def _keep(out: DatasetNight, stage: str, value: Any) -> None:
    """Copy what a finished stage returned into the night's row (before observers see it)."""
    if value is None:
        return
    if stage == "ingest":
        out.batch_id, out.batch_status = value.batch_id, value.status
    elif stage == "monitor":
        out.drift_share, out.dataset_drift = value["drift_share"], value["dataset_drift"]
        out.report, out.accuracy = value["report"], value["accuracy"]
    elif stage == "decide":
        out.retrain, out.reason = value["retrain"], value["reason"]
    elif stage == "train":
        out.challenger = value
    elif stage == "promote":
        out.promoted, out.gate = value["promoted"], value["gate"]


def recorded_night(plan: NightPlan, dataset: str) -> DatasetNight | None:
    """A night that already ran every stage without failure is not run again (idempotent
    backfill): its summary is read back from the warehouse instead."""
    stages = completed_stages(plan, dataset)
    if set(stages) != set(STAGES) or "failed" in stages.values() or "running" in stages.values():
        return None
    with connect(read_only=True) as con:
        batch = con.execute("SELECT batch_id, status FROM batches WHERE dataset = ? AND"
                            " batch_date = ? ORDER BY created_at DESC LIMIT 1",
                            [dataset, plan.night]).fetchone()
        drift = con.execute("SELECT share_drifted, dataset_drift, html_path FROM drift_reports"
                            " WHERE dataset = ? AND night_date = ? ORDER BY created_at DESC"
                            " LIMIT 1", [dataset, plan.night]).fetchone()
        decision = con.execute("SELECT retrain, reason FROM retraining_decisions WHERE"
                               " dataset = ? AND night_date = ?", [dataset, plan.night]
                               ).fetchone()
        gate = con.execute("SELECT challenger_version, passed FROM validations WHERE"
                           " dataset = ? AND validation_id LIKE ?",
                           [dataset, f"%:{plan.night.isoformat()}"]).fetchone()
    return DatasetNight(
        night=plan.night.isoformat(), dataset=dataset,
        batch_id=batch[0] if batch else None, batch_status=batch[1] if batch else None,
        drift_share=drift[0] if drift else None, dataset_drift=drift[1] if drift else None,
        report=drift[2] if drift else None,
        retrain=decision[0] if decision else None,
        reason=(decision[1] if decision else "") + " (already done)",
        challenger=gate[0] if gate else None, promoted=bool(gate and gate[1]),
        gate=None if gate is None else ("passed" if gate[1] else "refused"),
        champion=get_alias(dataset, "champion"), stages=stages)


def _skip(plan: NightPlan, dataset: str, stage: str, why: str, out: DatasetNight) -> None:
    record_stage(plan, dataset, stage, "skipped", started=_now(), seconds=0.0, detail=why)
    out.stages[stage] = "skipped"


def _detail(stage: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, StoredBatch):
        return f"{value.batch_id}: {value.n_rows} rows, {value.status}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if k != "report")[:1000]
    return str(value)[:1000]


def night_summary_markdown(night: date, rows: list[DatasetNight]) -> str:
    """The Markdown summary of a night (a Prefect artifact, and what the demo prints)."""
    lines = [f"# overnight: night of {night.isoformat()}", "",
             "| dataset | batch | drift | accuracy | decision | challenger | gate | champion |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        drift = "n/a" if r.drift_share is None else (
            f"{r.drift_share:.0%}" + (" (dataset drift)" if r.dataset_drift else ""))
        accuracy = "n/a" if r.accuracy is None else f"{r.accuracy:.3f}"
        decision = "failed at " + r.failed_stage if r.failed_stage else (
            "retrain" if r.retrain else "keep") + f": {r.reason or ''}"
        report = f" [report]({Path(r.report).as_uri()})" if r.report else ""
        lines.append(f"| {r.dataset} | {r.batch_status or 'n/a'} | {drift}{report} | "
                     f"{accuracy} | {decision} | {r.challenger or ''} | {r.gate or ''} | "
                     f"{r.champion or ''} |")
    return "\n".join(lines) + "\n"
