"""The stages of one dataset's night, each a plain function of the night's plan.

    ingest    generate the night's batch (built-in datasets, along the drift timeline) or load
              the files waiting in landing/DATASET/ (a user's own dataset); quality checks
    monitor   score the batch with the champion (labelled rows become performance evidence)
              and write the drift report against the champion's reference data
    decide    the automatic-rollback watch of the champion (`monitoring.rollback`), then the
              retraining policy's decision, with every trigger's evidence
    train     the Metaflow training flow over the recent window, registering a challenger
    promote   the validation gate on the challenger; promotion only when it passes

Each stage calls the layers below (`models`, `monitoring`, `warehouse`) and returns what it
found as a small frozen dataclass; a stage with nothing to do raises `StageSkipped`. Running
them in order, recording and alerting is `orchestration.night`'s job.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from models.data.batches import StoredBatch, generate_batch
from models.data.datasets import BUILTIN
from models.data.generators.base import STABLE
from models.data.ingest import ingest_file
from models.data.scenarios import Timeline
from models.registry.versions import get_alias
from monitoring.alerts import alert_failed_gate, alert_quarantine, alerts_for_decision, raise_alert
from monitoring.collect import alert_rejection
from monitoring.costs import alert_serving_cost_rise
from monitoring.gate import promote_validated, validate
from monitoring.performance import score_batch_with
from monitoring.policy import decide, policy_for
from monitoring.rollback import watch_champion
from warehouse.errors import OvernightError
from warehouse.landing import ingest_dataset_files
from warehouse.nights import night_id


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
    text_stats: bool = False        # text datasets: length, readability and sentiment features


@dataclass
class NightPlan:
    """One night's settings: its date and datasets, the drift timeline, training, drills."""

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
        return night_id(self.night)


@dataclass(frozen=True)
class Monitored:
    """What the monitor stage found: the champion's accuracy on the batch's labelled rows
    and the drift verdict against its reference data."""

    champion: str
    accuracy: float | None
    share_drifted: float | None
    dataset_drift: bool | None
    report: str | None
    served: dict[str, Any] | None = None    # the served-traffic report (None: nothing served)


@dataclass(frozen=True)
class Decided:
    """The decide stage's verdict (a forced retrain says so in its reason)."""

    retrain: bool
    reason: str
    rollback: str | None = None     # the automatic rollback of tonight, when there was one


@dataclass(frozen=True)
class Gated:
    """The promote stage's outcome: whether the challenger was promoted, and the gate's words."""

    promoted: bool
    gate: str


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
    landed = ingest_dataset_files(
        dataset, lambda path: ingest_file(dataset, path, batch_date=night), alert_rejection)
    if not landed.waiting:
        raise StageSkipped(f"no new file in {landed.folder}")
    if not landed.ingested:
        raise StageSkipped(f"every file in {landed.folder} was rejected ({len(landed.rejected)},"
                           f" kept in landing/_rejected/{dataset}/ with their reasons)")
    return landed.ingested[-1]


def monitor_stage(plan: NightPlan, dataset: str, batch: StoredBatch) -> Monitored:
    """Score the batch with the champion (labels become evidence) and report its drift."""
    if batch.status != "accepted":
        raise StageSkipped(f"batch {batch.batch_id} is quarantined")
    champion = get_alias(dataset, "champion")
    if champion is None:
        raise StageSkipped("no champion yet: nothing to monitor")
    scored = score_batch_with(champion, batch, datetime.combine(plan.night, datetime.min.time()))
    from monitoring.drift.nightly import run_drift_report

    summary = run_drift_report(dataset, batch.batch_id, champion, night_date=plan.night)
    drift = summary.as_dict()
    result = Monitored(champion, scored.accuracy, drift.get("share_drifted"),
                       drift.get("dataset_drift"), drift.get("html_path"),
                       report_served_drift(plan, dataset, champion))
    if result.dataset_drift:
        raise_alert("drift", f"{dataset} {plan.night}: dataset drift, "
                    f"{result.share_drifted:.0%} of columns drifted", dataset=dataset,
                    details=asdict(result), dedupe_key=f"drift:{dataset}:{plan.night}")
    return result


def report_served_drift(plan: NightPlan, dataset: str, champion: str) -> dict[str, Any] | None:
    """The drift report of the inputs served since the last night, beside the batch's.

    None when nothing was served; a report that cannot be made raises a warning alert
    instead of failing the night (the batch's report already stands)."""
    from monitoring.drift.served import NoServedTraffic, run_served_report

    try:
        summary = run_served_report(dataset, champion, night_date=plan.night)
    except NoServedTraffic:
        return None
    except OvernightError as error:
        raise_alert("served_drift_failed", f"{dataset} {plan.night}: no served-traffic drift "
                    f"report: {error}", dataset=dataset,
                    dedupe_key=f"served_drift_failed:{dataset}:{plan.night}")
        return None
    found = {"share_drifted": summary.share_drifted, "dataset_drift": summary.dataset_drift,
             "n_current": summary.n_current, "drifted": summary.drifted_columns,
             "report": summary.html_path}
    if summary.dataset_drift:
        raise_alert("drift", f"{dataset} {plan.night}: served traffic drifted, "
                    f"{summary.share_drifted:.0%} of columns", dataset=dataset,
                    details=found, dedupe_key=f"served_drift:{dataset}:{plan.night}")
    return found


def decide_stage(plan: NightPlan, dataset: str, batch: StoredBatch | None) -> Decided:
    """First the automatic-rollback watch of the champion (it may restore `previous`) and the
    cost alert of the last promotion, then the retraining decision on the champion that
    serves from now on."""
    watched = watch_champion(dataset, plan.night)
    alert_serving_cost_rise(dataset, plan.night)      # did the last promotion make serving dearer
    decision = decide(dataset, plan.night, batch.batch_id if batch else None)
    alerts_for_decision(decision)
    retrain = decision.retrain or plan.force_retrain
    reason = decision.reason if decision.retrain or not plan.force_retrain else (
        f"forced retrain ({decision.reason})")
    return Decided(retrain, reason, watched.reason if watched.rollback else None)


def train_stage(plan: NightPlan, dataset: str) -> str:
    """Run the training flow on the recent window; returns the registered challenger."""
    from models.training.runner import run_training

    settings = plan.training
    start = plan.night - timedelta(days=settings.window_days - 1)
    outcome = run_training(
        dataset, trials=settings.trials, optimize=settings.optimize, cv_folds=settings.cv_folds,
        time_budget=settings.time_budget, max_workers=settings.max_workers,
        algorithms=settings.algorithms.get(dataset, ""), start_date=start.isoformat(),
        end_date=plan.night.isoformat(), seed=plan.seed, text_stats=settings.text_stats,
        review_error_rate=policy_for(dataset).review_error_rate)
    return outcome.model_version


def promote_stage(plan: NightPlan, dataset: str, challenger: str) -> Gated:
    result = validate(dataset, challenger, night=plan.night.isoformat())
    if not result.passed:
        alert_failed_gate(dataset, challenger, result.reasons)
        return Gated(False, "refused: " + "; ".join(result.reasons))
    promote_validated(dataset, challenger, reason=f"passed the gate on {plan.night} "
                      f"(score {result.score:.2f})")
    return Gated(True, f"passed (score {result.score:.2f})")
