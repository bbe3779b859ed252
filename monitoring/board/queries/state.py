"""The board's starting point, read by the sidebar before any page: is there anything to show,
for which datasets and dates, and how fresh it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from monitoring.board.access import NoWarehouse, reading, warehouse_file
from monitoring.board.queries.sql import scalar


@dataclass(frozen=True)
class BoardState:
    """What the sidebar and the first-run check need: is there anything, for which datasets
    and dates, and when the warehouse was last written."""

    path: Path
    exists: bool
    datasets: tuple[str, ...] = ()
    first_day: date | None = None
    last_day: date | None = None
    last_night: date | None = None
    last_written: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.counts.get(t) for t in ("nightly_runs", "model_versions", "batches"))


_COUNTED = ("nightly_runs", "model_versions", "batches", "predictions", "drift_reports",
            "alerts")
# Timestamps of the moments rows were written (not the simulated night dates).
_WRITTEN = (("nightly_runs", "finished_at"), ("batches", "created_at"),
            ("model_versions", "created_at"), ("alias_history", "changed_at"),
            ("drift_reports", "created_at"), ("retraining_decisions", "decided_at"),
            ("alerts", "created_at"), ("validations", "validated_at"),
            ("training_runs", "finished_at"))


def board_state(path: Path | str | None = None) -> BoardState:
    """The board's starting point; an absent or unmigrated warehouse is an empty state."""
    db = warehouse_file(path)
    try:
        with reading(db) as con:
            # Table and column names below are this module's constants (_COUNTED, _WRITTEN,
            # "min"/"max", the `days` union); nothing of a user's text is pasted into SQL.
            counts = {t: int(scalar(con, f"SELECT count(*) FROM {t}") or 0) for t in _COUNTED}
            datasets = [r[0] for r in con.execute(
                "SELECT dataset FROM datasets UNION SELECT dataset FROM model_versions"
                " UNION SELECT dataset FROM nightly_runs ORDER BY 1").fetchall()]
            days = "(SELECT night_date AS d FROM nightly_runs UNION ALL SELECT night_date FROM" \
                " drift_reports UNION ALL SELECT CAST(predicted_at AS DATE) FROM predictions" \
                " UNION ALL SELECT CAST(created_at AS DATE) FROM alerts)"
            first, last = (scalar(con, f"SELECT {f}(d) FROM {days}") for f in ("min", "max"))
            night = scalar(con, "SELECT max(night_date) FROM nightly_runs")
            written = scalar(con, "SELECT max(t) FROM (" + " UNION ALL ".join(
                f"SELECT max({c}) AS t FROM {t}" for t, c in _WRITTEN) + ")")
    except NoWarehouse:
        return BoardState(db, exists=False)
    return BoardState(db, True, tuple(datasets), first, last, night, written, counts)


def _age(delta: timedelta) -> str:
    seconds = max(delta.total_seconds(), 0)
    for unit, size in (("days", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def freshness(state: BoardState, now: datetime | None = None) -> str:
    """How current the board is: when the warehouse was last written, and the last night."""
    if state.last_written is None:
        return "The warehouse has no rows yet."
    now = now or datetime.now(UTC).replace(tzinfo=None)
    night = f" Last night recorded: {state.last_night:%Y-%m-%d}." if state.last_night else ""
    return (f"Warehouse last written {state.last_written:%Y-%m-%d %H:%M} UTC "
            f"({_age(now - state.last_written)} ago).{night}")
