"""Landing-zone ingest: prediction logs and feedback labels written as Parquet by the serving
processes (which never open the warehouse) are moved into the warehouse.

Exactly once: a file's rows are inserted in one transaction, skipping prediction ids the
warehouse already has, and the file is moved to `ingested/` only after the commit. A crash
in between leaves the file in place; the next run inserts nothing from it and moves it. Files
still being written carry a hidden temporary name and are never read. When the warehouse is
held by another writer the connection helper waits and retries; if the lock outlasts its
patience the files simply stay for the next run.

A landed file that cannot be ingested must never stop the others (nor every later night), so
each file is checked alone first (readable Parquet, the expected columns and types, no missing
key values, valid JSON) on an in-memory DuckDB connection. A bad file is moved to
`landing/_rejected/KIND/NAME` with `NAME.reason.json` beside it (why and when), and the caller
is told (`on_reject`, which raises the alert before the file moves, so a crash in between
cannot lose the alert: its dedupe key is the rejected file's name). If the warehouse still
refuses a chunk of good-looking files, each file of the chunk is retried alone and only the
one the warehouse refuses is set aside.

A user's own dataset lands in `landing/DATASET/` (CSV or Parquet): `ingest_dataset_files`
runs the caller's ingest on each file, oldest first, keeps each done file in `ingested/` and
sets a refused one aside in `landing/_rejected/DATASET/` the same way.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

import duckdb

from warehouse.connection import WarehouseError, transaction
from warehouse.errors import OvernightError
from warehouse.settings import get_settings

FILES_PER_TRANSACTION = 200
REJECTED = "_rejected"

PREDICTIONS_SQL = """
INSERT INTO predictions
SELECT prediction_id, dataset, model_version, alias, role, request_id, predicted_at,
       predicted_class, predicted_index, confidence, needs_review, probabilities::JSON,
       inputs::JSON, latency_ms, coalesce(source_file, parse_filename(filename))
FROM read_parquet($files, filename = true, union_by_name = true) AS landed
WHERE NOT EXISTS (SELECT 1 FROM predictions p WHERE p.prediction_id = landed.prediction_id)
QUALIFY row_number() OVER (PARTITION BY prediction_id ORDER BY predicted_at) = 1
"""

FEEDBACK_SQL = """
INSERT INTO feedback
SELECT prediction_id, label, received_at, source
FROM read_parquet($files, union_by_name = true) AS landed
QUALIFY row_number() OVER (PARTITION BY prediction_id ORDER BY received_at DESC) = 1
ON CONFLICT (prediction_id) DO UPDATE SET label = excluded.label,
    received_at = excluded.received_at, source = excluded.source
"""


@dataclass(frozen=True)
class Column:
    """A column a landed Parquet file must have: its kind of type, and whether NULL is allowed."""

    kind: str            # "text", "json", "timestamp", "integer", "number", "boolean"
    required: bool = False


_TYPES = {
    "text": ("VARCHAR",),
    "json": ("VARCHAR", "JSON"),
    "timestamp": ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS",
                  "TIMESTAMP WITH TIME ZONE", "DATE"),
    "integer": ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT",
                "UINTEGER"),
    "number": ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT",
               "UINTEGER", "UBIGINT", "HUGEINT", "FLOAT", "DOUBLE"),
    "boolean": ("BOOLEAN",),
}

# What the INSERTs above read from a file (the warehouse's NOT NULL columns are required).
PREDICTION_COLUMNS = {
    "prediction_id": Column("text", True), "dataset": Column("text", True),
    "model_version": Column("text", True), "alias": Column("text"),
    "role": Column("text", True), "request_id": Column("text"),
    "predicted_at": Column("timestamp", True), "predicted_class": Column("text", True),
    "predicted_index": Column("integer"), "confidence": Column("number"),
    "needs_review": Column("boolean"), "probabilities": Column("json"),
    "inputs": Column("json"), "latency_ms": Column("number"), "source_file": Column("text"),
}
FEEDBACK_COLUMNS = {
    "prediction_id": Column("text", True), "label": Column("text", True),
    "received_at": Column("timestamp", True), "source": Column("text"),
}


@dataclass(frozen=True)
class Rejection:
    """A landed file set aside: where it came from, where it is now, why and when."""

    kind: str             # predictions, feedback, alerts, or the dataset of a user's file
    name: str             # its name in the landing folder
    path: Path            # landing/_rejected/KIND/NAME (a -2, -3... suffix if taken)
    reason: str
    rejected_at: str      # ISO 8601, UTC

    def as_dict(self) -> dict[str, str]:
        return {**asdict(self), "path": str(self.path)}

    @property
    def dedupe_key(self) -> str:
        """The id of the one alert raised for this rejection."""
        return f"landing_rejected:{self.kind}/{self.path.name}"


OnReject = Callable[[Rejection], object]


@dataclass(frozen=True)
class LandedIngest:
    kind: str
    files: int                      # files ingested
    rows: int                       # new rows in the warehouse
    rejected: tuple[Rejection, ...] = field(default=())


def landing_folder(kind: str) -> Path:
    """Where serving lands files of one kind (`predictions`, `feedback`, `alerts`).

    The leading underscore keeps them apart from users' dataset folders (`landing/DATASET/`):
    a dataset name starts with a letter.
    """
    return get_settings().landing_dir / f"_{kind}"


def rejected_folder(kind: str) -> Path:
    """Where rejected files of one kind (or of one dataset) are kept: landing/_rejected/KIND."""
    return get_settings().landing_dir / REJECTED / kind


def landed_files(kind: str, suffix: str = ".parquet") -> list[Path]:
    """Complete landing files of one kind, oldest name first."""
    folder = landing_folder(kind)
    if not folder.exists():
        return []
    return sorted(p for p in folder.glob(f"*{suffix}")
                  if p.is_file() and not p.name.startswith("."))


def _free_target(kind: str, name: str) -> Path:
    """landing/_rejected/KIND/NAME, or NAME-2, NAME-3... when a file of that name was already
    rejected (the same answer until the file is moved, so an alert's dedupe key is stable)."""
    folder = rejected_folder(kind)
    path = Path(name)
    candidate, n = folder / name, 1
    while candidate.exists() or _sidecar(candidate).exists():
        n += 1
        candidate = folder / f"{path.stem}-{n}{path.suffix}"
    return candidate


def _sidecar(path: Path) -> Path:
    return path.with_name(f"{path.name}.reason.json")


def reject_file(path: Path, kind: str, reason: str, on_reject: OnReject | None = None
                ) -> Rejection:
    """Move a landed file to landing/_rejected/KIND/ with a `.reason.json` sidecar.

    `on_reject` (the alert) runs before the move: if it fails, the file stays where it was and
    the next run tries again, under the same dedupe key.
    """
    target = _free_target(kind, path.name)
    rejection = Rejection(kind, path.name, target, reason,
                          datetime.now(UTC).isoformat(timespec="seconds"))
    if on_reject is not None:
        on_reject(rejection)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), target)
    sidecar = _sidecar(target)
    tmp = sidecar.with_name(f".{sidecar.name}.tmp")
    tmp.write_text(json.dumps({**rejection.as_dict(), "source": str(path)}, indent=2))
    os.replace(tmp, sidecar)
    return rejection


def one_line(error: BaseException) -> str:
    """An engine's message on one line (DuckDB's span several: a caret, a hint)."""
    lines = [line.strip() for line in str(error).splitlines()]
    return " ".join(line for line in lines if line and set(line) != {"^"}) or repr(error)


def _type_problems(types: dict[str, str], columns: dict[str, Column]) -> list[str]:
    problems = []
    missing = [name for name in columns if name not in types]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    for name, column in columns.items():
        found = types.get(name)
        if found is not None and found not in _TYPES[column.kind]:
            problems.append(f"column {name} is {found}, expected {column.kind}")
    return problems


def parquet_problem(con: duckdb.DuckDBPyConnection, path: Path,
                    columns: dict[str, Column]) -> str | None:
    """Why a landed Parquet file cannot be ingested, or None when it can.

    Reads the whole file (every column of every row group), so a truncated or corrupt file is
    found here rather than in the middle of the warehouse's transaction.
    """
    # The SQL below is built from constants only: `source` binds the path as a parameter, and
    # the column names come from our own landing layouts (`columns`), never from the file.
    source = "read_parquet($file)"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {source}", {"file": str(path)})
        types = {row[0]: str(row[1]) for row in described.fetchall()}
    except duckdb.Error as error:
        return f"not a readable Parquet file: {one_line(error)}"
    problems = _type_problems(types, columns)
    if problems:
        return "; ".join(problems)
    checks = ["count(*)"]
    checks += [f"count(*) FILTER (WHERE {name} IS NULL)"
               for name, column in columns.items() if column.required]
    checks += [f"count(*) FILTER (WHERE {name} IS NOT NULL AND NOT json_valid({name}))"
               for name, column in columns.items() if column.kind == "json"]
    labels = ["rows"] + [f"{name} missing" for name, c in columns.items() if c.required]
    labels += [f"{name} not JSON" for name, c in columns.items() if c.kind == "json"]
    try:
        # count(COLUMNS(*)) decodes every column, not only those named in the checks
        con.execute(f"SELECT count(COLUMNS(*)) FROM {source}", {"file": str(path)}).fetchall()
        counts = con.execute(f"SELECT {', '.join(checks)} FROM {source}",
                             {"file": str(path)}).fetchone()
    except duckdb.Error as error:
        return f"not a readable Parquet file: {one_line(error)}"
    assert counts is not None
    bad = [f"{label} in {n} row(s)" for label, n in zip(labels[1:], counts[1:], strict=True)
           if n]
    return "; ".join(bad) or None


def _insert(sql: str, files: Sequence[Path], done: Path) -> int:
    """One transaction for some files; they move to `ingested/` only after the commit."""
    with transaction() as con:
        changed = con.execute(sql, {"files": [str(p) for p in files]}).fetchone()
    done.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.move(str(path), done / path.name)
    return int(changed[0]) if changed else 0


def _ingest(kind: str, sql: str, columns: dict[str, Column],
            on_reject: OnReject | None) -> LandedIngest:
    files = landed_files(kind)
    done = landing_folder(kind) / "ingested"
    good: list[Path] = []
    rejected: list[Rejection] = []
    with duckdb.connect() as checker:
        for path in files:
            problem = parquet_problem(checker, path, columns)
            if problem is None:
                good.append(path)
            else:
                rejected.append(reject_file(path, kind, problem, on_reject))
    rows = 0
    ingested = 0
    for start in range(0, len(good), FILES_PER_TRANSACTION):
        chunk = good[start:start + FILES_PER_TRANSACTION]
        try:
            rows += _insert(sql, chunk, done)
            ingested += len(chunk)
            continue
        except duckdb.IOException:      # the disk or the lock, not a file: all stay for later
            raise
        except duckdb.Error:            # one file the checks let through: find it alone
            pass
        for path in chunk:
            try:
                rows += _insert(sql, [path], done)
                ingested += 1
            except duckdb.IOException:
                raise
            except duckdb.Error as error:
                reason = f"the warehouse refused its rows: {one_line(error)}"
                rejected.append(reject_file(path, kind, reason, on_reject))
    return LandedIngest(kind, ingested, rows, tuple(rejected))


def ingest_predictions(on_reject: OnReject | None = None) -> LandedIngest:
    """Move landed prediction logs into `predictions`; returns the files and new rows."""
    return _ingest("predictions", PREDICTIONS_SQL, PREDICTION_COLUMNS, on_reject)


def ingest_feedback(on_reject: OnReject | None = None) -> LandedIngest:
    """Move landed labels into `feedback` (a later label for the same prediction wins)."""
    return _ingest("feedback", FEEDBACK_SQL, FEEDBACK_COLUMNS, on_reject)


# ------------------------------------------------------- a user's files, landing/DATASET/

T = TypeVar("T")


@dataclass(frozen=True)
class DatasetLanding(Generic[T]):
    """The files a user dropped for one dataset, after an ingest: what each ingested file
    gave (oldest first), and the files set aside."""

    folder: Path                      # landing/DATASET
    waiting: int                      # files found
    ingested: tuple[T, ...]
    rejected: tuple[Rejection, ...] = field(default=())


def dataset_files(dataset: str) -> list[Path]:
    """The CSV and Parquet files waiting in landing/DATASET/, oldest first."""
    folder = get_settings().landing_dir / dataset
    if not folder.exists():
        return []
    return sorted([*folder.glob("*.csv"), *folder.glob("*.parquet")],
                  key=lambda p: p.stat().st_mtime)


def ingest_dataset_files(dataset: str, ingest: Callable[[Path], T],
                         on_reject: OnReject | None = None) -> DatasetLanding[T]:
    """Ingest each file waiting in landing/DATASET/ (oldest first) with `ingest`, then move it
    to landing/DATASET/ingested/ (the files are kept).

    A file `ingest` refuses (an `OvernightError` or `ValueError`) goes to
    landing/_rejected/DATASET/ and never blocks the rest; a `WarehouseError` (a locked
    warehouse) is not the file's fault: it propagates and the file stays for the next run.
    """
    folder = get_settings().landing_dir / dataset
    files = dataset_files(dataset)
    done = folder / "ingested"
    if files:
        done.mkdir(exist_ok=True)
    ingested: list[T] = []
    rejected: list[Rejection] = []
    for path in files:
        try:
            result = ingest(path)
        except WarehouseError:
            raise
        except (OvernightError, ValueError) as error:
            rejected.append(reject_file(path, dataset, str(error), on_reject))
            continue
        shutil.move(str(path), done / path.name)
        ingested.append(result)
    return DatasetLanding(folder, len(files), tuple(ingested), tuple(rejected))
