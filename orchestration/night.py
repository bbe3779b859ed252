"""One night for one dataset: the sequencing of its stages, which the Prefect flows call.

The stages (`orchestration.stages`: ingest, monitor, decide, train, promote) run in that order,
each handing the next what it found; a stage with nothing to do is recorded as skipped, and a
stage's failure is recorded and alerted and stops only this dataset's night. Each outcome is a
`nightly_runs` row (`warehouse.nights`), so a night that already finished is read back rather
than run again. `DatasetNight` is the night's summary row (rendered by
`orchestration.summary`). Nothing here knows about Prefect: tests/integration/test_night.py
runs a night without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.data.batches import StoredBatch
from models.registry.versions import get_alias
from monitoring.alerts import alert_failed_step
from orchestration.stages import (
    Decided,
    Gated,
    Monitored,
    NightPlan,
    StageSkipped,
    decide_stage,
    drill,
    ingest_stage,
    monitor_stage,
    promote_stage,
    train_stage,
)
from warehouse.nights import finished_night, record_stage


@dataclass
class DatasetNight:
    """What one dataset's night did: the row of the demo's summary table."""

    night: str
    dataset: str
    batch_id: str | None = None
    batch_status: str | None = None
    share_drifted: float | None = None      # the share of drifted columns
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
            record_stage(plan.night, dataset, name, "skipped", started=started,
                         seconds=time.perf_counter() - clock, detail=str(skipped))
            out.stages[name] = "skipped"
            tell(out, name)
            return None
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            record_stage(plan.night, dataset, name, "failed", started=started,
                         seconds=time.perf_counter() - clock, error=message[:2000])
            alert_failed_step(dataset, plan.night, name, message[:500])
            out.stages[name] = "failed"
            out.failed_stage = name
            tell(out, name)
            raise
        record_stage(plan.night, dataset, name, "ok", started=started,
                     seconds=time.perf_counter() - clock, detail=_detail(value))
        out.stages[name] = "ok"
        _keep(out, value)
        tell(out, name)
        return value

    def skip(name: str, why: str) -> None:
        record_stage(plan.night, dataset, name, "skipped", started=_now(), seconds=0.0,
                     detail=why)
        out.stages[name] = "skipped"
        tell(out, name)

    try:
        batch = stage("ingest", lambda: ingest_stage(plan, dataset))
        if batch is not None:
            stage("monitor", lambda: monitor_stage(plan, dataset, batch))
        else:
            skip("monitor", "no batch tonight")
        decision: Decided = stage("decide", lambda: decide_stage(plan, dataset, batch))
        challenger = None
        if decision.retrain:
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


def _keep(out: DatasetNight, value: Any) -> None:
    """Copy what a finished stage returned into the night's row (before observers see it)."""
    if isinstance(value, StoredBatch):
        out.batch_id, out.batch_status = value.batch_id, value.status
    elif isinstance(value, Monitored):
        out.share_drifted, out.dataset_drift = value.share_drifted, value.dataset_drift
        out.report, out.accuracy = value.report, value.accuracy
    elif isinstance(value, Decided):
        out.retrain, out.reason = value.retrain, value.reason
    elif isinstance(value, Gated):
        out.promoted, out.gate = value.promoted, value.gate
    elif isinstance(value, str):            # the train stage's challenger
        out.challenger = value


def recorded_night(plan: NightPlan, dataset: str) -> DatasetNight | None:
    """A night that already ran every stage without failure is not run again (idempotent
    backfill): its summary is read back from the warehouse instead."""
    found = finished_night(plan.night, dataset)
    if found is None:
        return None
    return DatasetNight(
        night=plan.night.isoformat(), dataset=dataset, batch_id=found.batch_id,
        batch_status=found.batch_status, share_drifted=found.share_drifted,
        dataset_drift=found.dataset_drift, report=found.report, retrain=found.retrain,
        reason=(found.reason or "") + " (already done)", challenger=found.challenger,
        promoted=bool(found.passed),
        gate=None if found.passed is None else ("passed" if found.passed else "refused"),
        champion=get_alias(dataset, "champion"), stages=found.stages)


def _detail(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, StoredBatch):
        return f"{value.batch_id}: {value.n_rows} rows, {value.status}"
    if isinstance(value, Monitored | Decided | Gated):
        return ", ".join(f"{k}={v}" for k, v in asdict(value).items() if k != "report")[:1000]
    return str(value)[:1000]
