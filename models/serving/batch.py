"""Batch scoring, the offline twin of the API: a CSV or Parquet file in, predictions out.

Same champion (loaded through the serving manifest with its signature verified), same record
validation, same scoring function and the same prediction log (role `batch`) as the API.
Rows that fail validation are written to a rejects file with the reason and the rest are
scored; columns that are not features (an id, the target) are carried through to the output.
The file is read in chunks, so its size is bounded by disk, not memory; outputs are written
under temporary names and renamed at the end, so a failed run leaves no half-written file.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from models.data.spec import DatasetSpec
from models.registry import manifest
from models.serving.columnar import ColumnChecker
from models.serving.csv_escape import append_csv
from models.serving.logs import land_prediction_block
from models.serving.schemas import field_errors, record_model
from models.serving.scoring import log_block, new_prediction_ids, score_frame
from models.serving.store import LoadedModel, RefusedArtifact, load_verified
from warehouse.errors import OvernightError

SUFFIXES = (".csv", ".parquet")


class BatchScoringError(OvernightError):
    """A batch-scoring request that cannot run (names the file or dataset and the problem)."""


@dataclass(frozen=True)
class BatchResult:
    dataset: str
    model_version: str
    scored: int
    rejected: int
    output: Path
    rejects: Path | None
    seconds: float


def current_champion(dataset: str) -> LoadedModel:
    """The dataset's champion, as the serving workers would load it."""
    snapshot = manifest.read_aliases()
    if snapshot is None or dataset not in snapshot["datasets"]:
        snapshot = manifest.publish_from_warehouse()
    entry = snapshot["datasets"].get(dataset, {}).get("champion")
    if entry is None:
        raise BatchScoringError(f"dataset {dataset!r} has no champion to score with "
                                "(train one: `overnight train` or a nightly run)")
    try:
        return load_verified(dataset, "champion", entry)
    except RefusedArtifact as error:
        # the same alert (and dedupe key) as a serving worker's refusal of this entry
        from models.serving.logs import land_alert

        land_alert("artifact_refused", f"overnight predict refused: {error}",
                   severity="critical", dataset=dataset,
                   details={"alias": "champion", "model_version": entry.get("model_version"),
                            "kept": None},
                   dedupe_key=f"artifact_refused:{dataset}:{entry.get('model_version')}")
        raise BatchScoringError(str(error)) from error


def _check_path(path: Path, role: str) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise BatchScoringError(f"{role} file {path} must end in .csv or .parquet")


def _chunks(path: Path, spec: DatasetSpec, rows: int) -> Iterator[pd.DataFrame]:
    if path.suffix.lower() == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            yield batch.to_pandas()
        return
    text = {f.name: "string" for f in spec.features if f.type != "numeric"}
    yield from pd.read_csv(path, chunksize=rows, dtype=text)


def _row_count(path: Path) -> int | None:
    if path.suffix.lower() == ".parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as handle:
        return max(sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
                   - 1, 0)


def _python(value: Any) -> Any:
    """pandas' missing markers become None (JSON null: "missing", which pipelines impute)."""
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    return value


def _number_or_text(value: Any) -> Any:
    """A CSV cell of a numeric column: its number when it reads as one, else left as it is
    (so validation names the bad value instead of a whole column turning to text)."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def validate_rows(frame: pd.DataFrame, record: type[BaseModel], spec: DatasetSpec,
                  first_row: int, checker: ColumnChecker | None = None
                  ) -> tuple[pd.DataFrame, list[int], list[dict[str, Any]]]:
    """The valid rows' features (validated), their positions, and one reject per bad row.

    The columnar check (`columnar.py`) passes most rows; only the rows it does not pass are
    put to the record model one by one, which accepts them after all or names the problem."""
    checker = checker or ColumnChecker(spec)
    frame = frame[spec.feature_names].copy()
    for name in spec.features_of_type("numeric"):
        if not pd.api.types.is_numeric_dtype(frame[name]) or frame[name].dtype == bool:
            frame[name] = frame[name].astype(object).map(_number_or_text)
    checked, ok = checker.check_frame(frame)
    rescued: list[dict[str, Any]] = []
    rescued_at: list[int] = []
    rejects = []
    for offset in np.flatnonzero(~ok).tolist():
        raw = frame.iloc[offset].to_dict()
        try:
            item = record.model_validate({k: _python(v) for k, v in raw.items()})
        except ValidationError as error:
            reason = "; ".join(f"{e['field']}: {e['problem']}" for e in field_errors(error))
            rejects.append({"row_number": first_row + offset, "reason": reason})
            continue
        rescued.append(item.model_dump())
        rescued_at.append(offset)
    passed = np.flatnonzero(ok).tolist()
    if not rescued:
        return checked.iloc[passed].reset_index(drop=True), passed, rejects
    both = pd.concat([checked.iloc[passed], checker.frame_of(rescued).set_axis(rescued_at)])
    both = both.sort_index()
    return both.reset_index(drop=True), both.index.tolist(), rejects


class _Writer:
    """Appends frames to a CSV or Parquet file under a temporary name; `commit` renames it.

    CSV is written by Arrow with the cells a spreadsheet would run as a formula escaped
    (models/serving/csv_escape.py), or by pandas exactly as it is with `raw`; Parquet is
    written as it is.
    """

    def __init__(self, path: Path, *, raw: bool = False) -> None:
        self.path = path
        self.raw = raw
        self.tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        self.rows = 0
        self._parquet: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.path.suffix.lower() == ".csv":
            if self.raw:
                frame.to_csv(self.tmp, mode="a", header=self.rows == 0, index=False)
            else:
                append_csv(frame, self.tmp, header=self.rows == 0)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._schema = table.schema
                self._parquet = pq.ParquetWriter(self.tmp, table.schema)
            self._parquet.write_table(table.cast(self._schema))
        self.rows += len(frame)

    def commit(self, keep_empty: bool) -> Path | None:
        if self._parquet is not None:
            self._parquet.close()
        if self.rows == 0 and not keep_empty:
            self.tmp.unlink(missing_ok=True)
            return None
        if not self.tmp.exists():   # an empty output still gets its header
            pd.DataFrame().to_csv(self.tmp, index=False)
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self.tmp.unlink(missing_ok=True)


def _append(frame: pd.DataFrame, **added: Any) -> pd.DataFrame:
    """`frame` with our columns added; where the file already has a column of that name (a
    feature called `confidence` or `row_number`...), ours is `overnight_<name>` instead, so
    the user's column is never overwritten."""
    out = frame.copy()
    for name, values in added.items():
        column = name
        while column in out.columns:
            column = f"overnight_{column}"
        out[column] = values
    return out


def _land_log(block: Callable[[], dict[str, Any]]) -> None:
    land_prediction_block(block())


class _Background:
    """One worker thread per named lane, each with at most one job waiting: `submit` first
    waits for the lane's previous job (so its error surfaces at once, and memory stays
    bounded), `wait` for every lane's last one."""

    def __init__(self, lanes: tuple[str, ...]) -> None:
        self._pools = {lane: ThreadPoolExecutor(1, thread_name_prefix=f"overnight-batch-{lane}")
                       for lane in lanes}
        self._pending: dict[str, Future[None]] = {}

    def submit(self, lane: str, fn: Callable[..., None], *args: Any) -> None:
        previous = self._pending.pop(lane, None)
        if previous is not None:
            previous.result()
        self._pending[lane] = self._pools[lane].submit(fn, *args)

    def wait(self) -> None:
        while self._pending:
            self._pending.popitem()[1].result()

    def stop(self) -> None:
        """Let running jobs end (never leave a thread writing a file being removed)."""
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)


def rejects_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.rejects{out.suffix}")


def _same_file(a: Path, b: Path) -> bool:
    """The same file under another spelling: relative, `..`, a symlink, a hard link."""
    try:
        if a.exists() and b.exists() and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _check_not_input(source: Path, out: Path) -> None:
    """Refuse an output that would overwrite the input (checked before anything is read)."""
    for target, role in ((out, "--out"), (rejects_path(out), "the rejects file of --out")):
        if _same_file(source, target):
            raise BatchScoringError(f"{role} {target} is the input file {source}; writing it "
                                    "would overwrite the input: choose another --out")


def explained_json(champion: LoadedModel, features: pd.DataFrame) -> list[str]:
    """Each row's SHAP explanation as a JSON text (`models.serving.explaining`)."""
    import json

    from models.serving.explaining import explain_records

    return [json.dumps(e, sort_keys=True) for e in explain_records(champion, features)]


def score_file(dataset: str, source: Path, out: Path, *, chunk_rows: int = 50_000,
               progress: bool = True, log_predictions: bool = True,
               raw: bool = False, explain: bool = False) -> BatchResult:
    """Score every valid row of `source` with the dataset's champion into `out` (CSV cells
    that start a spreadsheet formula are escaped unless `raw`); with `explain`, each row also
    gets its SHAP explanation as JSON in an `explanation` column (the same as the API's)."""
    _check_not_input(source, out)
    _check_path(source, "input")
    _check_path(out, "output")
    if not source.exists():
        raise BatchScoringError(f"input file {source} does not exist")
    champion = current_champion(dataset)
    spec = champion.spec
    rule = champion.conformal         # None: an older model, old review rule
    record = record_model(spec)
    checker = ColumnChecker(spec)
    run_id = f"batch-{uuid.uuid4().hex[:12]}"
    scored_out, rejects_out = _Writer(out, raw=raw), _Writer(rejects_path(out), raw=raw)
    started = time.perf_counter()
    first_row = 0
    # Writing a chunk's answers and landing its log rows (Arrow and Parquet work, which
    # releases the GIL) overlap with reading and scoring the next chunk: one thread for each,
    # at most one chunk waiting for each, so memory stays bounded by a few chunks.
    background = _Background(("output", "log") if log_predictions else ("output",))
    try:
        with Progress(TextColumn(f"scoring {source.name}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), disable=not progress) as bar:
            task = bar.add_task("rows", total=_row_count(source))
            for chunk in _chunks(source, spec, chunk_rows):
                missing = [c for c in spec.feature_names if c not in chunk.columns]
                if missing:
                    raise BatchScoringError(
                        f"{source} lacks the feature columns {', '.join(missing)} "
                        f"of dataset {dataset}")
                chunk = chunk.reset_index(drop=True)
                features, positions, rejects = validate_rows(chunk, record, spec, first_row,
                                                             checker)
                if rejects:
                    bad = chunk.drop(index=positions)
                    rejects_out.write(_append(
                        bad, row_number=[r["row_number"] for r in rejects],
                        reason=[r["reason"] for r in rejects]))
                if positions:
                    scored = score_frame(champion.model, features, spec, rule,
                                         model_ready=True)     # checked for this spec
                    ids = new_prediction_ids(len(positions))
                    result = _append(
                        chunk.iloc[positions].reset_index(drop=True), prediction_id=ids,
                        predicted_class=scored.class_names(),
                        predicted_index=scored.indices, confidence=scored.confidence,
                        needs_review=scored.needs_review,
                        review_reason=pd.array(scored.review_reasons, dtype="string"),
                        prediction_set=pd.array(
                            scored.set_texts() if rule is not None else [None] * len(positions),
                            dtype="string"),
                        model_version=champion.model_version)
                    result = _append(result, **{
                        f"proba_{name}": scored.probabilities[:, j]
                        for j, name in enumerate(spec.classes)})
                    if explain:
                        result = _append(result, explanation=explained_json(champion, features))
                    background.submit("output", scored_out.write, result)
                    if log_predictions:
                        background.submit("log", _land_log, partial(
                            log_block, scored, features, spec, ids=ids,
                            model_version=champion.model_version, alias="champion",
                            role="batch", request_id=run_id, source_file=source.name))
                first_row += len(chunk)
                bar.advance(task, len(chunk))
            background.wait()
    except BaseException:
        background.stop()
        scored_out.abort()
        rejects_out.abort()
        raise
    background.stop()
    output = scored_out.commit(keep_empty=True)
    assert output is not None
    rejected = rejects_out.rows
    return BatchResult(dataset, champion.model_version, scored_out.rows, rejected, output,
                       rejects_out.commit(keep_empty=False), time.perf_counter() - started)
