"""The write-ahead log of predictions: per-process segment files, compacted into Parquet.

Why: an answered prediction must survive the death of the process that answered it (SIGKILL,
the OOM killer, a gunicorn timeout). A row in a Python list dies with the process; a row handed
to the kernel with `write(2)` sits in the page cache and reaches the file even if the process
is killed the next instant. So each request's rows are appended to a segment file of the
process as one JSON line, before the response is returned; `fsync` is a separate, optional
policy against a machine crash (`OVERNIGHT_LOG_FSYNC`).

Files, all under `landing/_predictions/`:

- `wal/<host>-<pid>-<time>-<random>.log`: a segment, one line per request (so a request is
  logged wholly or not at all): `{"blocks": [...]}`, column blocks of the request's rows (the
  answering model's, then the shadow's), or, as the first version wrote, a JSON array of rows.
  Its writer holds an exclusive `flock` on it for as long as it lives; the kernel drops the
  lock when the process dies, however it dies. A segment is created under a hidden name,
  locked, then renamed, so no other process ever sees an unlocked live segment.
- `pred-<segment name>.parquet`: the compacted segment, written under a hidden temporary name
  and renamed into place. The name is a function of the segment, so compacting the same
  segment twice (a crash after the rename but before the segment is deleted) rewrites the
  same file, and the ingest, which skips prediction ids the warehouse has, adds nothing.

Compaction takes the segment's lock first (the owner already holds it; anyone else only gets
it once the owner is gone), so a live segment is never compacted by another process and an
orphan (its writer died) is compacted by whoever comes next: a new worker, or `overnight
collect` before it reads. An incomplete last line (the process died inside `write(2)`) is
ignored: it belongs to a request whose response was never sent.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from models.serving.json_columns import JsonObjectColumn
from warehouse.errors import OvernightError

log = logging.getLogger(__name__)

FSYNC_POLICIES = ("always", "interval", "never")
LOG_MODES = ("durable", "buffered")
SEGMENT_SUFFIX = ".log"
WAL_FOLDER = "wal"
STALE_NEW_SECONDS = 60.0        # a hidden segment never renamed: its creator died at birth

PREDICTION_SCHEMA = pa.schema([
    ("prediction_id", pa.string()), ("dataset", pa.string()), ("model_version", pa.string()),
    ("alias", pa.string()), ("role", pa.string()), ("request_id", pa.string()),
    ("predicted_at", pa.timestamp("us")), ("predicted_class", pa.string()),
    ("predicted_index", pa.int32()), ("confidence", pa.float64()),
    ("needs_review", pa.bool_()), ("probabilities", pa.string()), ("inputs", pa.string()),
    ("latency_ms", pa.float64()), ("source_file", pa.string()),
])


# Landed files are kept after ingest (landing/*/ingested/), so they are written small:
# zstd (a 50k-row chunk of customer predictions: 3.6 MB against snappy's 6.5 MB, in the same
# time), with dictionaries only for the columns whose values repeat (an id or a row's JSON
# never repeats; trying a dictionary on them cost time for nothing).
REPEATED_COLUMNS = frozenset({"dataset", "model_version", "alias", "role", "request_id",
                              "predicted_class", "source_file"})


class LogSettingsError(OvernightError):
    """An `OVERNIGHT_LOG_*` variable holds a value we do not know."""


class LogRefused(OvernightError):
    """The disk refused a prediction-log write: the prediction must not be answered."""


@dataclass(frozen=True)
class LogSettings:
    """How hard the log tries to survive a machine crash, and whether it is durable at all."""

    fsync: str = "interval"        # always: every request; interval: every `fsync_seconds`
    fsync_seconds: float = 1.0
    mode: str = "durable"          # buffered: rows wait in memory (benchmark baseline only)


def log_settings(environ: dict[str, str] | None = None) -> LogSettings:
    """The log's settings from `OVERNIGHT_LOG_FSYNC`, `OVERNIGHT_LOG_FSYNC_SECONDS` and
    `OVERNIGHT_LOG_MODE`; a wrong value is one clear error, raised before serving starts."""
    env = os.environ if environ is None else environ
    fsync = env.get("OVERNIGHT_LOG_FSYNC", "interval").strip().lower()
    mode = env.get("OVERNIGHT_LOG_MODE", "durable").strip().lower()
    raw_seconds = env.get("OVERNIGHT_LOG_FSYNC_SECONDS", "1")
    if fsync not in FSYNC_POLICIES:
        raise LogSettingsError(f"OVERNIGHT_LOG_FSYNC={fsync!r} is not one of "
                               f"{', '.join(FSYNC_POLICIES)}")
    if mode not in LOG_MODES:
        raise LogSettingsError(f"OVERNIGHT_LOG_MODE={mode!r} is not one of "
                               f"{', '.join(LOG_MODES)}")
    try:
        seconds = float(raw_seconds)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise LogSettingsError(f"OVERNIGHT_LOG_FSYNC_SECONDS={raw_seconds!r} is not a "
                               "positive number of seconds")
    return LogSettings(fsync=fsync, fsync_seconds=seconds, mode=mode)


@dataclass
class Segment:
    """An open, locked segment of this process (the fd holds the lock until closed)."""

    path: Path
    fd: int
    opened: float          # time.monotonic() at creation, for rolling by age
    rows: int = 0
    size: int = 0          # bytes of complete records: where a failed write is cut back to
    broken: bool = False   # a failed write could not be cut back: write no more to it


def wal_folder(folder: Path) -> Path:
    return folder / WAL_FOLDER


def _fsync_folder(folder: Path) -> None:
    """Make a rename or a new name in `folder` survive a machine crash."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_segment(folder: Path, *, sync_folder: bool) -> Segment:
    """A new segment of this process, locked before anyone can see it under its real name."""
    wal = wal_folder(folder)
    wal.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"{socket.gethostname()}-{os.getpid()}-{stamp}-{uuid.uuid4().hex[:8]}"
    hidden, final = wal / f".{name}{SEGMENT_SUFFIX}.new", wal / f"{name}{SEGMENT_SUFFIX}"
    fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC,
                 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(hidden, final)
        if sync_folder:
            _fsync_folder(wal)
    except BaseException:
        os.close(fd)
        hidden.unlink(missing_ok=True)
        raise
    return Segment(final, fd, time.monotonic())


def encode(rows: list[dict[str, Any]]) -> bytes:
    """One request's rows as one line (timestamps as ISO text, numpy scalars as numbers)."""
    return orjson.dumps(rows, default=str,
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)


def encode_blocks(blocks: list[dict[str, Any]]) -> bytes:
    """One request's rows as one line of column blocks (see `scoring.log_block`): numpy
    arrays are written by orjson in C, NaN as null, which is how "missing" is logged."""
    return orjson.dumps({"blocks": blocks}, default=_plain,
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE)


def _plain(value: Any) -> Any:
    """What orjson cannot write itself: a strided numpy array (a frame's column) as a list,
    anything else as text."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


BLOCK_SCALARS = ("dataset", "model_version", "alias", "role", "request_id", "predicted_at",
                 "latency_ms", "source_file")
BLOCK_LISTS = ("prediction_id", "predicted_class", "predicted_index", "confidence",
               "needs_review")


def _block_rows(block: dict[str, Any]) -> list[dict[str, Any]]:
    """A column block as the rows it holds (the row format of the log's first version)."""
    classes, names = block["classes"], list(block["inputs"])
    inputs = zip(*(block["inputs"][name] for name in names), strict=True)
    return [{**{k: block[k] for k in BLOCK_SCALARS},
             **{k: block[k][i] for k in BLOCK_LISTS},
             "probabilities": dict(zip(classes, block["probabilities"][i], strict=True)),
             "inputs": dict(zip(names, values, strict=True))}
            for i, values in enumerate(inputs)]


def _block_columns(block: dict[str, Any], columns: dict[str, list[Any]],
                   probabilities: JsonObjectColumn, inputs: JsonObjectColumn) -> None:
    """Extend `columns` with one block's rows, and the JSON columns with its values."""
    n = len(block["prediction_id"])
    at = block["predicted_at"]
    for key in BLOCK_LISTS:
        values = block[key]
        columns[key].extend(values.tolist() if isinstance(values, np.ndarray) else values)
    for key in BLOCK_SCALARS:
        columns[key].extend([datetime.fromisoformat(at) if key == "predicted_at"
                             and isinstance(at, str) else block[key]] * n)
    proba = np.asarray(block["probabilities"], dtype=float).reshape(n, len(block["classes"]))
    probabilities.add(block["classes"], [np.ascontiguousarray(c) for c in proba.T], n)
    inputs.add(list(block["inputs"]), list(block["inputs"].values()), n)


def blocks_table(blocks: list[dict[str, Any]]) -> pa.Table:
    """Column blocks (read back from a segment, or as `scoring.log_block` made them) as one
    landing table, built column by column: plain columns by extending lists, the JSON
    columns (inputs, probabilities) in Arrow (`json_columns`), once for the whole segment
    of single-record requests or the whole chunk of a batch, never one dict per row."""
    columns: dict[str, list[Any]] = {k: [] for k in (*BLOCK_LISTS, *BLOCK_SCALARS)}
    probabilities, inputs = JsonObjectColumn(), JsonObjectColumn()
    for block in blocks:
        if len(block["prediction_id"]):
            _block_columns(block, columns, probabilities, inputs)
    arrays = {name: pa.array(values, PREDICTION_SCHEMA.field(name).type)
              for name, values in columns.items()}
    arrays["probabilities"], arrays["inputs"] = probabilities.array(), inputs.array()
    return pa.Table.from_pydict({field.name: arrays[field.name] for field in PREDICTION_SCHEMA},
                                schema=PREDICTION_SCHEMA)


def write_record(segment: Segment, data: bytes, *, sync: bool) -> None:
    """Append one encoded request to the segment; on failure, cut a partial write back so
    that the next request starts on a clean line (or mark the segment broken)."""
    view, written = memoryview(data), 0
    try:
        while written < len(data):
            count = os.write(segment.fd, view[written:])
            if count <= 0:
                raise OSError(errno.ENOSPC, "write(2) wrote nothing")
            written += count
        if sync:
            os.fdatasync(segment.fd)
    except OSError:
        if written:
            try:
                os.ftruncate(segment.fd, segment.size)
            except OSError:
                segment.broken = True
        raise
    segment.size += len(data)


def close_segment(segment: Segment) -> None:
    """Release the segment's lock (after it was compacted, or at the very end)."""
    with contextlib.suppress(OSError):
        os.close(segment.fd)


@dataclass(frozen=True)
class SegmentContent:
    row_lines: list[dict[str, Any]]     # rows of lines in the row format
    blocks: list[dict[str, Any]]        # column blocks of lines in the block format
    torn_tail: bool        # an incomplete last record: its request was never answered
    bad_lines: int         # complete lines that did not parse (never written by us)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every record as a row, in the order written (within each format)."""
        return [*self.row_lines, *(row for block in self.blocks for row in _block_rows(block))]

    def count(self) -> int:
        return len(self.row_lines) + sum(len(b["prediction_id"]) for b in self.blocks)

    def table(self) -> pa.Table:
        """The landing table of every record."""
        tables = [pa.Table.from_pylist([_parquet_row(r) for r in self.row_lines],
                                       schema=PREDICTION_SCHEMA)] if self.row_lines else []
        if self.blocks:
            tables.append(blocks_table(self.blocks))
        return pa.concat_tables(tables)


def _is_block(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("prediction_id"), list) \
        and isinstance(value.get("inputs"), dict)


def read_segment(path: Path) -> SegmentContent:
    """Every complete record of a segment."""
    lines = path.read_bytes().split(b"\n")
    tail = lines.pop()          # b"" when the file ends with a complete record
    rows: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []
    bad = 0
    for line in lines:
        if not line:
            continue
        try:
            records = orjson.loads(line)
        except orjson.JSONDecodeError:
            bad += 1
            continue
        if isinstance(records, list):
            rows.extend(r for r in records if isinstance(r, dict))
        elif isinstance(records, dict) and isinstance(records.get("blocks"), list) \
                and all(_is_block(b) for b in records["blocks"]):
            blocks.extend(records["blocks"])
        else:
            bad += 1
    return SegmentContent(rows, blocks, bool(tail), bad)


def _parquet_row(row: dict[str, Any]) -> dict[str, Any]:
    """A logged row as the landing Parquet holds it (JSON columns as text, as before)."""
    at = row.get("predicted_at")
    return {**row,
            "predicted_at": datetime.fromisoformat(at) if isinstance(at, str) else at,
            "probabilities": orjson.dumps(row.get("probabilities")).decode(),
            "inputs": orjson.dumps(row.get("inputs"), default=str).decode()}


def write_parquet_file(rows: list[dict[str, Any]] | pa.Table, schema: pa.Schema, final: Path,
                       *, sync: bool) -> Path:
    """`rows` as one Parquet file visible under `final` only when complete (and, with `sync`,
    on stable storage before the name appears)."""
    tmp = final.with_name(f".{final.name}.tmp")
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, tmp, compression="zstd",
                   use_dictionary=[n for n in table.column_names if n in REPEATED_COLUMNS])
    if sync:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(tmp, final)
    if sync:
        _fsync_folder(final.parent)
    return final


def parquet_name(segment: Path) -> str:
    """The compacted file of a segment: the same name however often it is compacted."""
    return f"pred-{segment.name.removesuffix(SEGMENT_SUFFIX)}.parquet"


@dataclass(frozen=True)
class Compacted:
    path: Path | None       # None when the segment held no complete record
    rows: int


def compact_segment(segment: Path, folder: Path, *, sync: bool) -> Compacted:
    """Segment -> Parquet in `folder`, then delete the segment. The caller holds its lock."""
    content = read_segment(segment)
    if content.torn_tail or content.bad_lines:
        log.warning("prediction log %s: ignored %s incomplete last record and %d unreadable "
                    "lines", segment.name, "an" if content.torn_tail else "no",
                    content.bad_lines)
    target = None
    count = content.count()
    if count:
        target = write_parquet_file(content.table(), PREDICTION_SCHEMA,
                                    folder / parquet_name(segment), sync=sync)
    segment.unlink(missing_ok=True)
    return Compacted(target, count)


def _lock_orphan(path: Path) -> int | None:
    """An fd holding the lock of `path` when no live process holds it, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino != os.stat(path).st_ino:   # compacted and gone meanwhile
            raise FileNotFoundError(path)
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass(frozen=True)
class OrphanSweep:
    segments: int
    rows: int
    failed: int


def compact_orphans(folder: Path, *, sync: bool = True,
                    on_failure: Callable[[Path, OSError], None] | None = None) -> OrphanSweep:
    """Compact every segment whose writer is gone (no process holds its lock); segments of
    live writers are left alone. A segment that cannot be compacted stays for the next sweep
    and does not stop the others."""
    wal = wal_folder(folder)
    if not wal.is_dir():
        return OrphanSweep(0, 0, 0)
    segments = rows = failed = 0
    for path in sorted(wal.glob(f"*{SEGMENT_SUFFIX}")):
        if path.name.startswith("."):
            continue
        fd = _lock_orphan(path)
        if fd is None:
            continue
        try:
            done = compact_segment(path, folder, sync=sync)
            segments, rows = segments + 1, rows + done.rows
        except OSError as exc:
            failed += 1
            log.warning("orphaned prediction log %s not compacted: %s", path.name, exc)
            if on_failure is not None:
                on_failure(path, exc)
        finally:
            os.close(fd)
    _drop_stillborn(wal)
    return OrphanSweep(segments, rows, failed)


def _drop_stillborn(wal: Path) -> None:
    """Hidden segments whose creator died between creating and renaming them (never written)."""
    now = time.time()
    for path in wal.glob(f".*{SEGMENT_SUFFIX}.new"):
        try:
            old = now - path.stat().st_mtime > STALE_NEW_SECONDS
        except FileNotFoundError:
            continue
        if old and (fd := _lock_orphan(path)) is not None:
            try:
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)
