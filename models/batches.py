"""Batches into the warehouse: checked, written in one transaction, never duplicated.

Whatever its source (a generator or a user's file), a batch enters here: its quality checks
run first (pure functions, before any write), then the batch row, its check results and its
data rows land in one transaction. A batch that fails a blocking check is stored as
quarantined with its reason and is never returned by `load_training_frame`. Batch ids are
deterministic, so re-running a night does not add a second copy of its batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import duckdb
import pandas as pd

from models.datasets import builtin, register_dataset, rows_table
from models.generators.base import STABLE, DriftState
from models.quality import CheckResult, QualityThresholds, quarantine_reason, run_quality_checks
from models.spec import DatasetSpec
from warehouse import connect, transaction


@dataclass(frozen=True)
class StoredBatch:
    batch_id: str
    dataset: str
    batch_date: date
    n_rows: int
    status: str                      # 'accepted' or 'quarantined'
    reason: str | None
    checks: tuple[CheckResult, ...]
    already_present: bool = False


def batch_exists(con: duckdb.DuckDBPyConnection, batch_id: str) -> StoredBatch | None:
    row = con.execute(
        "SELECT dataset, batch_date, n_rows, status, quarantine_reason FROM batches"
        " WHERE batch_id = ?", [batch_id]
    ).fetchone()
    if row is None:
        return None
    return StoredBatch(batch_id, row[0], row[1], int(row[2]), row[3], row[4], (), True)


def store_batch(
    spec: DatasetSpec,
    frame: pd.DataFrame,
    *,
    batch_id: str,
    batch_date: date,
    source: str,
    scenario: str | None = None,
    seed: int | None = None,
    source_file: str | None = None,
    content_sha256: str | None = None,
    limits: QualityThresholds | None = None,
) -> StoredBatch:
    """Check a batch and write it with its checks and rows, all in one transaction."""
    checks = run_quality_checks(frame, spec, limits)
    reason = quarantine_reason(checks)
    status = "quarantined" if reason else "accepted"
    now = datetime.now(UTC).replace(tzinfo=None)
    n_labelled = int(frame[spec.target].notna().sum()) if spec.target in frame else 0
    with transaction() as con:
        existing = batch_exists(con, batch_id)
        if existing is not None:
            return existing
        register_dataset(con, spec, source)
        con.execute(
            "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
            [batch_id, spec.name, batch_date, source, scenario, seed, len(frame), n_labelled,
             status, reason, source_file, content_sha256, now],
        )
        con.executemany(
            "INSERT INTO quality_checks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[batch_id, spec.name, c.name, c.passed, c.blocking, c.observed, c.threshold,
              c.detail, now] for c in checks],
        )
        if checks[0].passed:   # rows whose columns match the spec are kept, even quarantined
            _insert_rows(con, spec, frame, batch_id)
    return StoredBatch(batch_id, spec.name, batch_date, len(frame), status, reason, tuple(checks))


def _insert_rows(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, frame: pd.DataFrame,
                 batch_id: str) -> None:
    columns = [*spec.feature_names, spec.target]
    incoming = frame[columns].reset_index(drop=True)
    con.register("incoming_batch", incoming)
    try:
        quoted = ", ".join(f'"{c}"' for c in columns)
        con.execute(
            f"INSERT INTO {rows_table(spec.name)} (batch_id, row_number, {quoted})"
            f" SELECT ?, row_number() OVER () - 1, {quoted} FROM incoming_batch",
            [batch_id],
        )
    finally:
        con.unregister("incoming_batch")


def load_batch(spec: DatasetSpec, batch_id: str) -> pd.DataFrame:
    """The rows of one batch, in their original order, features and target."""
    columns = ", ".join(f'"{c}"' for c in [*spec.feature_names, spec.target])
    with connect(read_only=True) as con:
        return con.execute(
            f"SELECT {columns} FROM {rows_table(spec.name)} WHERE batch_id = ?"
            " ORDER BY row_number", [batch_id]
        ).df()


def load_training_frame(spec: DatasetSpec, *, start: date | None = None,
                        end: date | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Labelled rows of accepted batches dated in [start, end], and the batch ids used."""
    columns = ", ".join(f'r."{c}"' for c in [*spec.feature_names, spec.target])
    with connect(read_only=True) as con:
        exists = con.execute("SELECT count(*) FROM information_schema.tables"
                             " WHERE table_name = ?", [rows_table(spec.name)]).fetchone()
        if not exists or not exists[0]:          # a known dataset with no batch yet
            return pd.DataFrame(columns=[*spec.feature_names, spec.target]), []
        frame = con.execute(
            f"SELECT r.batch_id, {columns} FROM {rows_table(spec.name)} r"
            " JOIN batches b USING (batch_id) WHERE b.status = 'accepted'"
            " AND ($start::DATE IS NULL OR b.batch_date >= $start::DATE)"
            " AND ($end::DATE IS NULL OR b.batch_date <= $end::DATE)"
            f' AND r."{spec.target}" IS NOT NULL ORDER BY b.batch_date, r.batch_id, r.row_number',
            {"start": start, "end": end},
        ).df()
    batch_ids = list(dict.fromkeys(frame.pop("batch_id")))
    return frame, batch_ids


def generated_batch_id(dataset: str, batch_date: date) -> str:
    return f"{dataset}-{batch_date.isoformat()}"


def generate_batch(
    dataset: str,
    batch_date: date,
    *,
    n_rows: int | None = None,
    seed: int = 42,
    drift: DriftState = STABLE,
    scenario: str = "stable",
    limits: QualityThresholds | None = None,
) -> StoredBatch:
    """Generate one night's batch of a built-in dataset and store it (idempotent per date)."""
    entry = builtin(dataset)
    batch_id = generated_batch_id(dataset, batch_date)
    with connect(read_only=True) as con:
        existing = batch_exists(con, batch_id)
    if existing is not None:
        return existing
    frame = entry.generate(batch_date, n_rows or entry.default_rows, seed, drift)
    return store_batch(entry.spec, frame, batch_id=batch_id, batch_date=batch_date,
                       source="generator", scenario=scenario, seed=seed, limits=limits)
