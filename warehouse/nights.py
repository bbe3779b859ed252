"""The stages of a night, in running order: the names `nightly_runs.stage` records.

Why here, in the bottom layer: orchestration runs the stages (`orchestration.night`) and the
status board shows them in this order (`monitoring.board`), and monitoring may not import
orchestration; both import the names from the warehouse, which records them.

Below them, the recording itself: one `nightly_runs` row per night, dataset and stage
(`record_stage`), and a finished night read back (`finished_night`), so a re-run of a night
that already finished returns what it found instead of running its stages again. These take
plain values; the night's plan and summary row stay in `orchestration`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from warehouse.connection import connect, transaction

STAGES = ("ingest", "monitor", "decide", "train", "promote")


# ------------------------------------------------------ recording a night, reading it back


def night_id(night: date) -> str:
    """The id `nightly_runs.night_id` gives a night."""
    return f"night-{night.isoformat()}"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def record_stage(night: date, dataset: str, stage: str, status: str, *, started: datetime,
                 seconds: float, detail: str | None = None, error: str | None = None,
                 flow_run_id: str | None = None) -> None:
    """One nightly_runs row per (night, dataset, stage); a re-run replaces it."""
    with transaction() as con:
        con.execute("DELETE FROM nightly_runs WHERE night_id = ? AND dataset = ? AND stage = ?",
                    [night_id(night), dataset, stage])
        con.execute("INSERT INTO nightly_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [night_id(night), night, dataset, stage, status, started, _now(),
                     seconds, detail, error, flow_run_id])


def completed_stages(night: date, dataset: str) -> dict[str, str]:
    """The status recorded for each stage of one dataset's night (stage -> status)."""
    with connect(read_only=True) as con:
        rows = con.execute("SELECT stage, status FROM nightly_runs WHERE night_id = ?"
                           " AND dataset = ?", [night_id(night), dataset]).fetchall()
    return dict(rows)


def is_finished(stages: dict[str, str]) -> bool:
    """Every stage recorded, none failed or still running: the night need not run again."""
    return (set(stages) == set(STAGES) and "failed" not in stages.values()
            and "running" not in stages.values())


@dataclass(frozen=True)
class FinishedNight:
    """What a finished night left in the warehouse: its batch, drift verdict, decision and
    gate (None where that night recorded none)."""

    stages: dict[str, str]
    batch_id: str | None = None
    batch_status: str | None = None
    share_drifted: float | None = None
    dataset_drift: bool | None = None
    report: str | None = None
    retrain: bool | None = None
    reason: str | None = None
    challenger: str | None = None
    passed: bool | None = None


def finished_night(night: date, dataset: str) -> FinishedNight | None:
    """A night that already ran every stage without failure, read back from the warehouse
    (None when it has not finished: it must run, or run again)."""
    stages = completed_stages(night, dataset)
    if not is_finished(stages):
        return None
    with connect(read_only=True) as con:
        batch = con.execute("SELECT batch_id, status FROM batches WHERE dataset = ? AND"
                            " batch_date = ? ORDER BY created_at DESC LIMIT 1",
                            [dataset, night]).fetchone()
        drift = con.execute("SELECT share_drifted, dataset_drift, html_path FROM drift_reports"
                            " WHERE dataset = ? AND night_date = ?"
                            " AND coalesce(source, 'batch') = 'batch'"
                            " ORDER BY created_at DESC LIMIT 1", [dataset, night]).fetchone()
        decision = con.execute("SELECT retrain, reason FROM retraining_decisions WHERE"
                               " dataset = ? AND night_date = ?", [dataset, night]).fetchone()
        gate = con.execute("SELECT challenger_version, passed FROM validations WHERE"
                           " dataset = ? AND validation_id LIKE ?",
                           [dataset, f"%:{night.isoformat()}"]).fetchone()
    return FinishedNight(
        stages=stages, batch_id=batch[0] if batch else None,
        batch_status=batch[1] if batch else None,
        share_drifted=drift[0] if drift else None, dataset_drift=drift[1] if drift else None,
        report=drift[2] if drift else None,
        retrain=decision[0] if decision else None, reason=decision[1] if decision else None,
        challenger=gate[0] if gate else None, passed=gate[1] if gate else None)
