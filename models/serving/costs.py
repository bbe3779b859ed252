"""What serving costs: CPU seconds per model version in one worker, landed per interval.

How it is measured, and why this way. Two clocks, each cheap:

- In the request path, the CPU time of the request's own thread (`time.thread_time`, one
  clock read at the start of the request and one at the end of scoring and answering; the
  shadow challenger's scoring is read apart and charged to the challenger). It follows the
  model, not the wall clock: time spent waiting for the disk or for another request's
  batched `predict_proba` is not CPU and is not counted. Under adaptive batching
  (`batching.SharedScorer`) one thread scores the requests that waited for it; they are all
  of one model, so the model version is still charged the right amount (the waiting threads
  cost nothing meanwhile).
- Once per interval, the process's CPU time (`time.process_time`: every thread) since the
  last interval. What the requests did not account for (the prediction log's compaction
  thread, the model store's polling, requests that failed validation, the WSGI server
  itself) is the worker's overhead, and is shared among the model versions by their share
  of the interval's predictions: a version that serves more traffic causes more of it.

Memory is charged the same way: the worker's peak resident memory (`ru_maxrss`) held for
the interval, shared by predictions (an idle interval charges no one, and lands nothing).

Sampling process CPU alone and sharing it by prediction counts would charge a cheap logistic
regression as much per prediction as a forest served by the same worker; timing only the
scoring call would miss the parsing, checks and logging a request needs. The hot path adds
three clock reads and one dictionary update under a lock (`record`): 1 to 3 microseconds, about
0.02 % of the 5 ms a single-record request costs (`benchmarks/bench_cost_meter.py`).

Each interval's figures become one small Parquet file in `landing/_costs/` (written under a
hidden name, then renamed), which `overnight collect` stores in `serving_costs`; the
interval is `OVERNIGHT_COST_INTERVAL_SECONDS` (60 by default), and the last one is landed
when the worker exits (gunicorn's `worker_exit`, `atexit`).
"""

from __future__ import annotations

import atexit
import logging
import os
import resource
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from models.serving.logs import write_parquet_atomically
from warehouse.errors import OvernightError
from warehouse.landing import landing_folder

log = logging.getLogger(__name__)

COSTS = "costs"
DEFAULT_INTERVAL_SECONDS = 60.0
INTERVAL_ENV = "OVERNIGHT_COST_INTERVAL_SECONDS"

COST_SCHEMA = pa.schema([
    ("sample_id", pa.string()), ("worker", pa.string()), ("dataset", pa.string()),
    ("model_version", pa.string()), ("interval_start", pa.timestamp("us")),
    ("interval_end", pa.timestamp("us")), ("predictions", pa.int64()), ("requests", pa.int64()),
    ("cpu_seconds", pa.float64()), ("request_cpu_seconds", pa.float64()),
    ("gb_hours", pa.float64()),
])

clock = time.thread_time          # the request path's clock: this thread's CPU seconds


class CostSettingsError(OvernightError, ValueError):
    """A wrong OVERNIGHT_COST_INTERVAL_SECONDS (said in one line before serving starts)."""


def interval_seconds() -> float:
    """The landing interval from the environment; a wrong value is one clear error."""
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise CostSettingsError(f"{INTERVAL_ENV} must be a number of seconds above 0, "
                                f"got {text!r}")
    return value


def peak_memory_gb() -> float:
    """This process's peak resident memory in GB (ru_maxrss: KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**3 if sys.platform == "darwin" else peak / 1024**2


@dataclass
class Usage:
    """One model version's figures within an interval."""

    dataset: str
    cpu_seconds: float = 0.0
    predictions: int = 0
    requests: int = 0


def attribute(usage: dict[str, Usage], process_cpu: float, gb_hours: float
              ) -> list[dict[str, Any]]:
    """Each version's CPU: what its requests measured plus its share (by predictions) of the
    process CPU they did not account for; and its share of the memory held."""
    measured = sum(u.cpu_seconds for u in usage.values())
    overhead = max(process_cpu - measured, 0.0)
    total = sum(u.predictions for u in usage.values())
    rows = []
    for version, used in sorted(usage.items()):
        share = used.predictions / total if total else 1 / len(usage)
        rows.append({"dataset": used.dataset, "model_version": version,
                     "predictions": used.predictions, "requests": used.requests,
                     "cpu_seconds": used.cpu_seconds + overhead * share,
                     "request_cpu_seconds": used.cpu_seconds, "gb_hours": gb_hours * share})
    return rows


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class CostMeter:
    """The cost figures of one serving process; thread-safe."""

    def __init__(self, folder: Path | None = None, *, interval: float | None = None) -> None:
        self.folder = folder or landing_folder(COSTS)
        self.interval = interval if interval is not None else interval_seconds()
        self.worker = f"{socket.gethostname()}-{os.getpid()}"
        self._lock = threading.Lock()
        self._usage: dict[str, Usage] = {}
        self._since = _now()
        self._since_cpu = time.process_time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.files_written = 0
        atexit.register(self.close)

    def record(self, dataset: str, model_version: str, predictions: int,
               cpu_seconds: float) -> None:
        """One request's (or its shadow scoring's) CPU seconds for a model version."""
        with self._lock:
            used = self._usage.get(model_version)
            if used is None:
                used = self._usage[model_version] = Usage(dataset)
            used.cpu_seconds += cpu_seconds
            used.predictions += predictions
            used.requests += 1

    def land(self) -> Path | None:
        """The interval so far as one landing file (None when nothing was predicted)."""
        end, cpu_now = _now(), time.process_time()
        with self._lock:
            usage, self._usage = self._usage, {}
            start, self._since = self._since, end
            cpu_then, self._since_cpu = self._since_cpu, cpu_now
        if not usage:
            return None
        hours = (end - start).total_seconds() / 3600
        rows = attribute(usage, cpu_now - cpu_then, peak_memory_gb() * hours)
        sample = uuid.uuid4().hex
        for row in rows:
            row.update(sample_id=f"{sample}:{row['model_version']}", worker=self.worker,
                       interval_start=start, interval_end=end)
        path = write_parquet_atomically(rows, COST_SCHEMA, self.folder, "cost")
        self.files_written += 1
        return path

    def start(self) -> None:
        """Land every `interval` seconds from a daemon thread (one per worker)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cost-meter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._land_quietly()

    def _land_quietly(self) -> None:
        try:
            self.land()
        except OSError as error:      # the figures of this interval are lost, serving is not
            log.warning("serving costs not landed in %s: %s", self.folder, error)

    def close(self) -> None:
        """Stop the thread and land what is left (gunicorn's worker exit, atexit)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._land_quietly()
