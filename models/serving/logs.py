"""Loss-free prediction logs: each request's rows on disk before its answer leaves.

`PredictionLog` is one process's log (one per gunicorn worker, one per `overnight predict`).
`append` writes a request's rows to the process's write-ahead segment (`wal.py`) with one
`write(2)` before the caller answers, so a process killed at any moment (SIGKILL, the OOM
killer, a gunicorn timeout) has lost nothing it answered; `OVERNIGHT_LOG_FSYNC` decides how
often the segment is also forced to stable storage against a machine crash. A segment is
rolled after `flush_rows` rows or `flush_seconds`, and compacted into a Parquet file in the
landing zone by a background thread (or by the appending call when there is no thread), and
at shutdown (gunicorn's worker exit and `atexit`). Segments left by a dead process are
compacted by the next worker's thread (at start and every half minute) and by `overnight
collect`.

Nothing waits in memory, so nothing needs a bound there: when the disk refuses a write
(ENOSPC, EACCES, EIO...) `append` raises `LogRefused`, the API answers 503 instead of an
answer it could not log, and one alert is landed for the outage (not one per request).
`OVERNIGHT_LOG_MODE=buffered` keeps rows in memory until a roll instead: the benchmark's
baseline, which loses up to `flush_seconds` of answered predictions on a process crash.
"""

from __future__ import annotations

import atexit
import errno
import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.parquet as pq

from models.serving.wal import (
    PREDICTION_SCHEMA,
    LogRefused,
    LogSettings,
    Segment,
    blocks_table,
    close_segment,
    compact_orphans,
    compact_segment,
    encode,
    encode_blocks,
    log_settings,
    open_segment,
    write_parquet_file,
    write_record,
)
from warehouse.landing import landing_folder

__all__ = ["FEEDBACK_SCHEMA", "PREDICTION_SCHEMA", "LogRefused", "PredictionLog",
           "land_alert", "land_feedback", "write_parquet_atomically"]

log = logging.getLogger(__name__)

PREDICTIONS = "predictions"
FEEDBACK = "feedback"
ALERTS = "alerts"
ORPHAN_SWEEP_SECONDS = 30.0
MAX_SEGMENT_BYTES = 64 * 1024 * 1024
BUFFER_BOUND = 4              # buffered mode: refuse once 4 x flush_rows wait unwritten

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


def land_prediction_block(block: dict[str, Any], folder: Path | None = None) -> Path:
    """A batch run's chunk of predictions (`scoring.log_block`) straight into the landing
    zone as one Parquet file, on stable storage before the run goes on: a file of rows needs
    no write-ahead segment, since it is written whole before anything depends on it."""
    folder = folder or landing_folder(PREDICTIONS)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"pred-batch-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}.parquet"
    return write_parquet_file(blocks_table([block]), PREDICTION_SCHEMA, folder / name, sync=True)


class PredictionLog:
    """The prediction log of one process; thread-safe."""

    def __init__(self, folder: Path | None = None, *, flush_rows: int = 500,
                 flush_seconds: float = 2.0, settings: LogSettings | None = None) -> None:
        self.folder = folder or landing_folder(PREDICTIONS)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.settings = settings or log_settings()
        self._active: Segment | None = None       # durable mode: the segment being appended
        self._rolled: list[Segment] = []          # closed to appends, still locked by us
        self._memory: list[bytes] = []            # buffered mode only
        self._memory_rows = 0
        self._memory_since = time.monotonic()
        self._lock = threading.Lock()             # the active segment and the lists
        self._compact_lock = threading.Lock()     # closing segments' fds, one compactor
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: dict[str, str] = {}        # alert kind -> error, while it lasts
        self._alert_lock = threading.Lock()
        self._unlanded: list[tuple[str, str, dict[str, Any]]] = []
        self.files_written = 0
        self.rows_written = 0
        self.refused = 0
        atexit.register(self.close)

    # -- the request path -------------------------------------------------------------------

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Log one request's rows; on return they are in the OS (and, with fsync=always, on
        stable storage). Raises `LogRefused` when the disk refuses them."""
        if rows:
            self._append(encode(rows), len(rows))

    def append_blocks(self, blocks: list[dict[str, Any]]) -> None:
        """`append` for rows held as column blocks (`scoring.log_block`): what the API and
        batch scoring log, without a dict per row."""
        count = sum(len(block["prediction_id"]) for block in blocks)
        if count:
            self._append(encode_blocks(blocks), count)

    def _append(self, data: bytes, count: int) -> None:
        with self._lock:
            if self.settings.mode == "buffered":
                rolled = self._buffer(data, count)
            else:
                rolled = self._write(data, count)
        if rolled:
            self._after_roll()

    def _write(self, data: bytes, count: int) -> bool:
        """Append to the active segment (under the lock); True when the segment was rolled."""
        segment = self._active
        try:
            if segment is None or segment.broken:
                if segment is not None:
                    self._rolled.append(segment)
                segment = self._active = None
                segment = self._active = open_segment(
                    self.folder, sync_folder=self.settings.fsync != "never")
            write_record(segment, data, sync=self.settings.fsync == "always")
        except OSError as exc:
            self._refuse(exc)
        self._recovered("prediction_log_refused")
        segment.rows += count
        if segment.rows >= self.flush_rows or segment.size >= MAX_SEGMENT_BYTES:
            self._rolled.append(segment)
            self._active = None
            return True
        return False

    def _buffer(self, data: bytes, count: int) -> bool:
        """Buffered mode: keep the rows; write them as one segment once `flush_rows` wait."""
        if self._memory_rows >= BUFFER_BOUND * self.flush_rows:
            self._refuse(OSError(errno.ENOBUFS, f"{self._memory_rows} logged rows could not "
                                 "be written"))
        if not self._memory:
            self._memory_since = time.monotonic()
        self._memory.append(data)
        self._memory_rows += count
        if self._memory_rows < self.flush_rows:
            return False
        try:
            self._spill()
        except OSError as exc:
            self._background_failure("prediction_log_refused", exc)
            return False
        return True

    def _spill(self) -> None:
        """Buffered mode: the waiting rows as one rolled segment (under the lock)."""
        if not self._memory:
            return
        segment = open_segment(self.folder, sync_folder=self.settings.fsync != "never")
        try:
            write_record(segment, b"".join(self._memory), sync=self.settings.fsync != "never")
        except OSError:
            segment.path.unlink(missing_ok=True)
            close_segment(segment)
            raise
        segment.rows = self._memory_rows
        self._rolled.append(segment)
        self._memory, self._memory_rows = [], 0

    def _refuse(self, exc: OSError) -> NoReturn:
        """The disk refused a write: one alert for the outage, and the request must fail."""
        self.refused += 1
        problem = f"{type(exc).__name__}: {exc}"
        self._alert_once("prediction_log_refused",
                         f"the prediction log in {self.folder} refuses writes ({problem}); "
                         "prediction requests are answered 503 until it accepts them again",
                         exc)
        raise LogRefused(f"the prediction log refuses writes: {problem}") from exc

    def _after_roll(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._wake.set()
            return
        try:                 # no background thread: compact here (the rows are safe already)
            self._compact_rolled()
        except OSError as exc:
            self._background_failure("prediction_log_compaction_failed", exc)

    # -- rolling, compaction, fsync ---------------------------------------------------------

    def pending(self) -> int:
        """Rows logged but not yet compacted into a landing Parquet file."""
        with self._lock:
            return (self._memory_rows + (self._active.rows if self._active else 0)
                    + sum(s.rows for s in self._rolled))

    def flush(self) -> Path | None:
        """Roll the active segment and compact every rolled one; the last Parquet written."""
        with self._lock:
            self._roll()
        return self._compact_rolled()

    def _roll(self) -> None:
        if self.settings.mode == "buffered":
            self._spill()
        elif self._active is not None:
            self._rolled.append(self._active)
            self._active = None

    def _compact_rolled(self) -> Path | None:
        last = None
        with self._compact_lock:
            with self._lock:
                segments, self._rolled = self._rolled, []
            for i, segment in enumerate(segments):
                try:
                    done = compact_segment(segment.path, self.folder,
                                           sync=self.settings.fsync != "never")
                except OSError:
                    with self._lock:
                        self._rolled[:0] = segments[i:]
                    raise
                close_segment(segment)
                if done.path is not None:
                    last = done.path
                    self.files_written += 1
                    self.rows_written += done.rows
        self._recovered("prediction_log_compaction_failed")
        return last

    def _sync_active(self) -> None:
        """fsync=interval: force what the active segment holds to stable storage."""
        with self._compact_lock:              # its fd cannot be closed meanwhile
            with self._lock:
                segment = self._active
            if segment is not None and segment.size:
                os.fdatasync(segment.fd)

    def _roll_if_old(self) -> None:
        now = time.monotonic()
        with self._lock:
            if self.settings.mode == "buffered":
                if self._memory and now - self._memory_since >= self.flush_seconds:
                    self._spill()
            elif (self._active is not None and self._active.rows
                  and now - self._active.opened >= self.flush_seconds):
                self._rolled.append(self._active)
                self._active = None

    def sweep_orphans(self) -> int:
        """Compact segments of dead processes (this process's own are locked by it)."""
        swept = compact_orphans(self.folder, sync=self.settings.fsync != "never")
        if swept.segments:
            log.warning("compacted %d prediction-log segments (%d rows) left by dead "
                        "processes", swept.segments, swept.rows)
        return swept.rows

    # -- the background thread --------------------------------------------------------------

    def start(self) -> None:
        """Roll, compact, fsync and sweep orphans from a daemon thread (one per worker)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tick = max(0.005, min(self.flush_seconds, self.settings.fsync_seconds) / 2)
        last_sync = last_sweep = time.monotonic()
        self._background(self.sweep_orphans)
        while not self._stop.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            if self._stop.is_set():
                break
            self._background(self._roll_if_old, self._compact_rolled)
            now = time.monotonic()
            if self.settings.fsync == "interval" and now - last_sync >= \
                    self.settings.fsync_seconds:
                self._background(self._sync_active)
                last_sync = now
            if now - last_sweep >= ORPHAN_SWEEP_SECONDS:
                self._background(self.sweep_orphans)
                last_sweep = now
            self._land_unlanded()

    def _background(self, *steps: Any) -> None:
        for step in steps:
            try:
                step()
            except OSError as exc:       # segments stay on disk; the next tick retries
                self._background_failure("prediction_log_compaction_failed", exc)
                return

    def close(self) -> None:
        """Stop the thread and compact everything (gunicorn's worker exit, atexit). What
        cannot be compacted now stays in its segment for the next worker or collect."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=30)
        try:
            self.flush()
        except OSError as exc:
            log.error("prediction log not compacted at exit (%s): its segments in %s are "
                      "compacted by the next worker or `overnight collect`", exc,
                      self.folder / "wal")
        self._land_unlanded()

    # -- alerts: one per outage -------------------------------------------------------------

    def _background_failure(self, kind: str, exc: OSError) -> None:
        self._alert_once(kind, f"prediction-log segments in {self.folder / 'wal'} cannot be "
                         f"compacted ({type(exc).__name__}: {exc}); they stay on disk and are "
                         "retried", exc)

    def _alert_once(self, kind: str, message: str, exc: OSError) -> None:
        with self._alert_lock:
            if kind in self._failing:
                return
            self._failing[kind] = str(exc)
            self._unlanded.append((kind, message, {"folder": str(self.folder),
                                                   "error": str(exc), "errno": exc.errno,
                                                   "pid": os.getpid()}))
        log.critical(message)
        self._land_unlanded()

    def _recovered(self, kind: str) -> None:
        if self._failing and self._failing.pop(kind, None) is not None:
            log.warning("prediction log in %s works again (%s is over)", self.folder, kind)

    def _land_unlanded(self) -> None:
        """Land the alerts raised so far (the alert folder may be on the refusing disk too:
        those that fail are retried by the background thread)."""
        with self._alert_lock:
            while self._unlanded:
                kind, message, details = self._unlanded[0]
                hour = datetime.now(UTC).strftime("%Y-%m-%dT%H")
                try:
                    land_alert(kind, message, severity="critical", dataset=None,
                               details=details,
                               dedupe_key=f"{kind}:{socket.gethostname()}:{hour}")
                except OSError:
                    return
                self._unlanded.pop(0)


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
