"""Loss-free prediction logs: a bounded in-process buffer flushed to Parquet in the landing zone.

Each serving process appends its rows to a buffer; the buffer is written as one Parquet file
when it reaches `flush_rows`, every `flush_seconds` (a background thread), and at shutdown
(gunicorn's worker exit and `atexit`). A file is written under a hidden temporary name and
renamed into place, so the nightly ingest only ever sees complete files; file names carry the
host, process id and a random part, so workers never collide. The ingest inserts a file's rows
that are not yet in the warehouse and then moves the file aside: a crash between the two only
makes the next ingest skip the rows it already has, so no prediction is lost or duplicated.
A buffer that reaches its bound is flushed by the request that fills it (back-pressure rather
than dropping rows).
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.landing import landing_folder

PREDICTIONS = "predictions"
FEEDBACK = "feedback"
ALERTS = "alerts"

PREDICTION_SCHEMA = pa.schema([
    ("prediction_id", pa.string()), ("dataset", pa.string()), ("model_version", pa.string()),
    ("alias", pa.string()), ("role", pa.string()), ("request_id", pa.string()),
    ("predicted_at", pa.timestamp("us")), ("predicted_class", pa.string()),
    ("predicted_index", pa.int32()), ("confidence", pa.float64()),
    ("needs_review", pa.bool_()), ("probabilities", pa.string()), ("inputs", pa.string()),
    ("latency_ms", pa.float64()), ("source_file", pa.string()),
])
FEEDBACK_SCHEMA = pa.schema([
    ("prediction_id", pa.string()), ("label", pa.string()), ("dataset", pa.string()),
    ("received_at", pa.timestamp("us")), ("source", pa.string()),
])


def write_parquet_atomically(rows: list[dict[str, Any]], schema: pa.Schema, folder: Path,
                             prefix: str) -> Path:
    """One complete Parquet file of `rows`, visible under its final name only when written."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"{prefix}-{stamp}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    final = folder / f"{name}.parquet"
    tmp = folder / f".{name}.parquet.tmp"
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, tmp)
    os.replace(tmp, final)
    return final


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON columns as text (orjson: the stdlib encoder was a third of a batch's time)."""
    return {**row,
            "probabilities": orjson.dumps(row["probabilities"]).decode(),
            "inputs": orjson.dumps(row["inputs"], default=str).decode()}


class PredictionLog:
    """The buffer of one process; thread-safe; flushed by size, time and at exit."""

    def __init__(self, folder: Path | None = None, *, flush_rows: int = 500,
                 flush_seconds: float = 2.0) -> None:
        self.folder = folder or landing_folder(PREDICTIONS)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.files_written = 0
        self.rows_written = 0
        atexit.register(self.close)

    def append(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._rows.extend(rows)   # JSON-encoded at flush, off the request's path
            full = len(self._rows) >= self.flush_rows
        if full:
            self.flush()

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def flush(self) -> Path | None:
        """Write what is buffered as one file; rows go back to the buffer if writing fails."""
        with self._write_lock:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return None
            try:
                path = write_parquet_atomically([_jsonable(r) for r in rows], PREDICTION_SCHEMA,
                                                self.folder, "pred")
            except BaseException:
                with self._lock:
                    self._rows[:0] = rows
                raise
            self.files_written += 1
            self.rows_written += len(rows)
            return path

    def start(self) -> None:
        """Flush every `flush_seconds` from a daemon thread (started in each worker)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except OSError:       # disk trouble: rows stay buffered, the next tick retries
                continue

    def close(self) -> None:
        self._stop.set()
        self.flush()


def land_feedback(dataset: str, labels: list[dict[str, str]], source: str) -> Path:
    """Ground-truth labels as one landing file (they are rare and must not wait in memory)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [{"prediction_id": item["prediction_id"], "label": item["label"],
             "dataset": dataset, "received_at": now, "source": source} for item in labels]
    return write_parquet_atomically(rows, FEEDBACK_SCHEMA, landing_folder(FEEDBACK), "feedback")


def land_alert(kind: str, message: str, *, severity: str, dataset: str | None,
               details: dict[str, Any], dedupe_key: str) -> Path:
    """An alert raised by a serving process, stored by the next ingest (serving never writes
    to the warehouse)."""
    folder = landing_folder(ALERTS)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"kind": kind, "message": message, "severity": severity, "dataset": dataset,
               "details": details, "dedupe_key": dedupe_key,
               "raised_at": datetime.now(UTC).isoformat()}
    name = f"alert-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(payload, default=str))
    os.replace(tmp, folder / name)
    return folder / name
