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

from models.data import identifiers as ids
from models.data.datasets import BUILTIN, builtin, ensure_rows_table, register_dataset, stored_spec
from models.data.datasets import table_exists as _table_exists
from models.data.generators.base import STABLE, DriftState
from models.data.quality import (
    CheckResult,
    QualityThresholds,
    quarantine_reason,
    run_quality_checks,
)
from models.data.spec import DatasetSpec
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
        # a spec is registered only from an accepted batch: a quarantined first file of a new
        # dataset is kept (batch, checks) but leaves the dataset new, and its rows are not
        # stored, since no table of a registered spec can hold them
        known = stored_spec(con, spec.name) is not None or spec.name in BUILTIN
        if status == "accepted":
            register_dataset(con, spec, source)
        elif known and checks[0].passed:
            ensure_rows_table(con, spec)
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
        if checks[0].passed and (known or status == "accepted"):
            _insert_rows(con, spec, frame, batch_id)   # kept even when quarantined
    return StoredBatch(batch_id, spec.name, batch_date, len(frame), status, reason, tuple(checks))


def _insert_rows(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, frame: pd.DataFrame,
                 batch_id: str) -> None:
    """The batch's rows under internal column names (the users' names never reach SQL)."""
    columns = ids.storage_columns(len(spec.features))
    incoming = frame[[*spec.feature_names, spec.target]].reset_index(drop=True)
    incoming = incoming.set_axis(columns, axis=1)
    con.register("incoming_batch", incoming)
    try:
        table = ids.rows_table(spec.name, spec.revision)
        con.execute(
            f"INSERT INTO {ids.quote(table)} (batch_id, row_number, {ids.quote_all(columns)})"
            f" SELECT ?, row_number() OVER () - 1, {ids.quote_all(columns)} FROM incoming_batch",
            [batch_id],
        )
    finally:
        con.unregister("incoming_batch")


def _user_names(spec: DatasetSpec) -> list[str]:
    return [*spec.feature_names, spec.target]


def _source(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> tuple[str, bool] | None:
    """The table holding a spec's rows and whether it is a legacy one (None: no rows yet)."""
    table = ids.rows_table(spec.name, spec.revision)
    if _table_exists(con, table):
        return table, False
    legacy = ids.legacy_rows_table(spec.name)
    if spec.revision == 0 and _table_exists(con, legacy):
        return legacy, True
    return None


def _named(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Internal (or legacy) data columns, by position, renamed to the user's exact names
    (which may well be `batch_id` or `row_number` themselves)."""
    data = frame.drop(columns=[c for c in ids.META_COLUMNS if c in frame.columns])
    return data.iloc[:, :len(spec.features) + 1].set_axis(_user_names(spec), axis=1)


def load_batch(spec: DatasetSpec, batch_id: str) -> pd.DataFrame:
    """The rows of one batch, in their original order, under the user's column names."""
    with connect(read_only=True) as con:
        source = _source(con, spec)
        if source is None:
            return pd.DataFrame(columns=_user_names(spec))
        table, legacy = source
        columns = "*" if legacy else ids.quote_all(ids.storage_columns(len(spec.features)))
        frame = con.execute(
            f"SELECT {columns} FROM {ids.quote(table)} WHERE batch_id = ? ORDER BY row_number",
            [batch_id]).df()
    return _named(frame, spec)


def load_training_frame(spec: DatasetSpec, *, start: date | None = None,
                        end: date | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Labelled rows of accepted batches dated in [start, end], and the batch ids used."""
    with connect(read_only=True) as con:
        source = _source(con, spec)
        if source is None:                        # a known dataset with no batch yet
            return pd.DataFrame(columns=_user_names(spec)), []
        table, legacy = source
        internal = ids.storage_columns(len(spec.features))
        columns = "r.*" if legacy else ids.quote_all(["batch_id", *internal], prefix="r")
        labelled = "" if legacy else f" AND r.{ids.quote(ids.TARGET_COLUMN)} IS NOT NULL"
        frame = con.execute(
            f"SELECT {columns} FROM {ids.quote(table)} r"
            " JOIN batches b USING (batch_id) WHERE b.status = 'accepted'"
            " AND ($start::DATE IS NULL OR b.batch_date >= $start::DATE)"
            " AND ($end::DATE IS NULL OR b.batch_date <= $end::DATE)"
            f"{labelled} ORDER BY b.batch_date, r.batch_id, r.row_number",
            {"start": start, "end": end},
        ).df()
    labelled_rows = frame.iloc[:, len(frame.columns) - 1].notna().to_numpy()
    batch_ids = list(dict.fromkeys(frame["batch_id"][labelled_rows]))
    return _named(frame, spec)[labelled_rows].reset_index(drop=True), batch_ids


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
