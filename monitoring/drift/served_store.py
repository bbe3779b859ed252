"""Typed storage of served inputs: per-dataset Parquet files with generated column names.

Why it exists. Served inputs reach the warehouse as one JSON text per row
(`predictions.inputs`); every statistic over them would parse JSON again (20 quantiles over
10M rows: about 76 s from JSON, about 10 s from typed columns). So when the serving logs are
collected, the rows of the prediction files just landed are also written once, typed, to
`served/DATASET/typed-*.parquet` under the data home: one column per feature of the
dataset's spec, in spec order, named `c0`, `c1`... (never the user's column names, which are
user text), numeric features as DOUBLE, categorical and text as VARCHAR, beside
prediction_id, model_version, alias, role, predicted_at and predicted_class.

What counts as served traffic: the roles `served` (the champion, or the challenger when the
canary answered) and `batch` (`overnight predict`); shadow rows repeat inputs the champion
already answered and are left out. A night's own batch scoring does not land files, so it is
not served traffic either.

Bookkeeping, in the warehouse (migration 4): `served_sources` names every landed file
already typed (so a file is typed once, even after a crash: a file typed but not recorded is
typed again into a new file, and the unrecorded one is never read), `served_files` lists the
typed files with their column map, row count and time span, and the served drift report that
took them (`report_id`, NULL until a night reports on them). The typed file is written
(atomically) before its rows are recorded, in one transaction, which first checks that no
other collect typed the same landed files meanwhile (if one did, our copies are deleted).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from models.data.datasets import get_spec
from models.data.spec import DatasetSpec
from warehouse import connect, get_settings, transaction
from warehouse.errors import OvernightError
from warehouse.landing import landing_folder

SERVED_ROLES = ("served", "batch")
BATCH_ROWS = 200_000
SOURCES_PER_RUN = 2_000


def served_folder(dataset: str) -> Path:
    """Where the typed served inputs of one dataset live (dataset names are validated)."""
    return get_settings().home / "served" / dataset


def column_map(spec: DatasetSpec) -> list[dict[str, str]]:
    """The generated column of every feature, in spec order: name, type and `c<i>`."""
    return [{"feature": f.name, "type": f.type, "column": f"c{i}"}
            for i, f in enumerate(spec.features)]


def json_pointer(name: str) -> str:
    """RFC 6901 pointer to a top-level key (bound as a value, never written into SQL)."""
    return "/" + name.replace("~", "~0").replace("/", "~1")


def typed_select(spec: DatasetSpec) -> str:
    """The SELECT that types one dataset's served rows of some landed files.

    Built from constants and generated names only (`c<i>`, positions in a bound list of
    pointers); the file list, dataset and pointers are parameters.
    """
    parts = []
    for i, feature in enumerate(spec.features):
        value = f"v[{i + 1}]"
        parts.append(f"TRY_CAST({value} AS DOUBLE) AS c{i}" if feature.type == "numeric"
                     else f"{value} AS c{i}")
    return (
        "SELECT prediction_id, model_version, alias, role, "
        "CAST(predicted_at AS TIMESTAMP) AS predicted_at, predicted_class, "
        + ", ".join(parts) +
        " FROM (SELECT *, json_extract_string(CAST(inputs AS VARCHAR), $pointers) AS v"
        " FROM read_parquet($files, union_by_name = true)"
        " WHERE dataset = $dataset AND list_contains($roles, role) AND inputs IS NOT NULL)")


@dataclass(frozen=True)
class TypedRun:
    """What one typing run did: landed files looked at, typed files written, rows typed."""

    sources: int
    files: int
    rows: int


def _untyped_sources() -> list[Path]:
    folder = landing_folder("predictions") / "ingested"
    if not folder.exists():
        return []
    files = sorted(p for p in folder.glob("*.parquet")
                   if p.is_file() and not p.name.startswith("."))
    if not files:
        return []
    with connect(read_only=True) as con:
        done = {r[0] for r in con.execute(
            "SELECT source_file FROM served_sources WHERE list_contains($names, source_file)",
            {"names": [p.name for p in files]}).fetchall()}
    return [p for p in files if p.name not in done][:SOURCES_PER_RUN]


def _write_typed(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, sources: list[Path],
                 path: Path) -> int:
    """Stream one dataset's typed rows of `sources` into `path` (atomically); rows written."""
    params = {"files": [str(p) for p in sources], "dataset": spec.name,
              "roles": list(SERVED_ROLES),
              "pointers": [json_pointer(f.name) for f in spec.features]}
    reader = con.sql(typed_select(spec), params=params).to_arrow_reader(BATCH_ROWS)
    assert reader is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    rows = 0
    with pq.ParquetWriter(scratch, reader.schema, compression="zstd") as writer:
        for batch in reader:
            if batch.num_rows:
                writer.write_batch(batch)
                rows += batch.num_rows
    if rows == 0:
        scratch.unlink()
        return 0
    os.replace(scratch, path)
    return rows


def type_landed_predictions() -> TypedRun:
    """Type the served inputs of every ingested prediction file not typed yet.

    Called by `monitoring.collect.collect_serving_logs` after the ingest. A dataset the
    warehouse does not know (no spec) is skipped: its rows stay in `predictions` only.
    """
    sources = _untyped_sources()
    if not sources:
        return TypedRun(0, 0, 0)
    records: list[list[Any]] = []
    rows_total = 0
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    with duckdb.connect() as scratch:
        datasets = [r[0] for r in scratch.execute(
            "SELECT DISTINCT dataset FROM read_parquet($files, union_by_name = true)"
            " WHERE list_contains($roles, role) AND inputs IS NOT NULL ORDER BY 1",
            {"files": [str(p) for p in sources], "roles": list(SERVED_ROLES)}).fetchall()]
        for dataset in datasets:
            try:
                with connect(read_only=True) as con:
                    spec = get_spec(con, dataset)
            except OvernightError:
                continue
            path = served_folder(spec.name) / f"typed-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
            rows = _write_typed(scratch, spec, sources, path)
            if rows == 0:
                continue
            [span] = scratch.execute("SELECT min(predicted_at), max(predicted_at) FROM "
                                     "read_parquet($f)", {"f": str(path)}).fetchall()
            records.append([f"{spec.name}:{path.stem}", spec.name, str(path), rows, span[0],
                            span[1], json.dumps(column_map(spec))])
            rows_total += rows
    now = datetime.now(UTC).replace(tzinfo=None)
    with transaction() as con:
        [(raced,)] = con.execute(
            "SELECT count(*) FROM served_sources WHERE list_contains($names, source_file)",
            {"names": [p.name for p in sources]}).fetchall()
        if raced:       # another collect typed them meanwhile: keep its files, drop ours
            for record in records:
                Path(record[2]).unlink(missing_ok=True)
            return TypedRun(len(sources), 0, 0)
        for record in records:
            con.execute("INSERT INTO served_files (file_id, dataset, path, n_rows,"
                        " first_predicted_at, last_predicted_at, columns, created_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [*record, now])
        con.executemany("INSERT OR IGNORE INTO served_sources VALUES (?, ?)",
                        [[p.name, now] for p in sources])
    return TypedRun(len(sources), len(records), rows_total)


@dataclass(frozen=True)
class ServedFiles:
    """The typed files one served report reads: paths, rows and the span of their traffic."""

    dataset: str
    file_ids: tuple[str, ...]
    paths: tuple[str, ...]
    n_rows: int
    first_predicted_at: datetime | None
    last_predicted_at: datetime | None


def files_to_report(dataset: str, spec: DatasetSpec, report_id: str) -> ServedFiles:
    """The typed files of a dataset no served report has taken yet (or taken by this very
    report: a night run again reads the same files), typed under the current spec's columns.
    Files typed under another spec revision are left out (their columns mean other things)."""
    expected = column_map(spec)
    with connect(read_only=True) as con:
        rows = con.execute(
            "SELECT file_id, path, n_rows, first_predicted_at, last_predicted_at, columns"
            " FROM served_files WHERE dataset = ? AND (report_id IS NULL OR report_id = ?)"
            " ORDER BY created_at, file_id", [dataset, report_id]).fetchall()
    kept = [r for r in rows if json.loads(r[5]) == expected and Path(r[1]).exists()]
    return ServedFiles(
        dataset, tuple(r[0] for r in kept), tuple(r[1] for r in kept),
        sum(int(r[2]) for r in kept),
        min((r[3] for r in kept), default=None), max((r[4] for r in kept), default=None))
