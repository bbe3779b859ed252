"""A user's own CSV or Parquet file in, as a batch of a dataset, through the same door.

The first file of a dataset registers its spec (inferred from the file, or read from a spec
file); later files are conformed to that spec. Anything structurally wrong with the file
(unreadable, empty, not UTF-8, missing target, unknown or missing columns, values of the wrong
type) is refused with one clear `IngestError` before anything is written. Problems of content
(too many missing values, out-of-range values...) are for the quality checks, which quarantine.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models.data.batches import StoredBatch, store_batch
from models.data.datasets import BUILTIN, next_revision, stored_spec
from models.data.identifiers import duplicates, header_problem
from models.data.spec import DatasetSpec, FeatureSpec, SpecError, TaskKind, one_line
from warehouse import connect, get_settings
from warehouse.errors import OvernightError

SUFFIXES = (".csv", ".parquet")
MAX_CATEGORIES = 50          # object columns with more distinct values are text...
TEXT_MIN_MEAN_LENGTH = 30    # ...when their values are long enough to be prose


class IngestError(OvernightError):
    """A file that cannot become a batch; the message names the file and what is wrong."""


def read_user_file(path: Path) -> pd.DataFrame:
    """Read a CSV (UTF-8) or Parquet file into a frame, refusing what cannot be read."""
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if path.suffix.lower() not in SUFFIXES:
        raise IngestError(f"{path}: unsupported file type {path.suffix!r}; use .csv or .parquet")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty")
    try:
        if path.suffix.lower() == ".parquet":
            repeated = duplicates(pq.read_schema(path).names)
            if repeated:          # pyarrow cannot even read such a file into a frame
                raise IngestError(
                    f"{path}: column name(s) {', '.join(map(repr, repeated))} appear more "
                    "than once; every column needs its own name")
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, encoding="utf-8", encoding_errors="strict")
    except UnicodeDecodeError as error:
        raise IngestError(
            f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
            f"{error.start}); save the file as UTF-8"
        ) from error
    except pd.errors.EmptyDataError as error:
        raise IngestError(f"{path}: the file has no columns or rows") from error
    except (pd.errors.ParserError, pa.ArrowException, OSError, ValueError) as error:
        raise IngestError(f"{path}: cannot be parsed: {str(error).splitlines()[0]}") from error
    if frame.empty:
        raise IngestError(f"{path}: the file has a header but no rows")
    if path.suffix.lower() == ".csv":
        header = _csv_header(path)
        if len(header) != len(frame.columns):
            raise IngestError(f"{path}: the header has {len(header)} names but the rows have "
                              f"{len(frame.columns)} fields")
        frame.columns = header          # pandas renames repeats (`a.1`) and blanks (`Unnamed`)
    # Spaces around a name (`a, b, c` headers) are layout, not meaning: they are dropped, and
    # names that become equal by it are refused as duplicates.
    frame.columns = [c.strip() if isinstance(c, str) else c for c in frame.columns]
    check_headers(path, list(frame.columns))
    return frame


def _csv_header(path: Path) -> list[str]:
    """The header row exactly as written (pandas would silently rename repeated names)."""
    with path.open(encoding="utf-8-sig", errors="strict", newline="") as handle:
        return next(csv.reader(handle), [])


def check_headers(path: Path, names: list[object]) -> None:
    """Refuse, naming the column, a header that cannot be used (see `header_problem`)."""
    for position, name in enumerate(names, start=1):
        problem = header_problem(name)
        if problem:
            shown = repr(name) if len(str(name)) <= 60 else repr(str(name)[:60]) + "..."
            raise IngestError(f"{path}: column {position} {shown} {problem}")
    repeated = duplicates(str(n) for n in names)
    if repeated:
        raise IngestError(f"{path}: column name(s) {', '.join(map(repr, repeated))} appear "
                          "more than once; every column needs its own name")


def infer_spec(frame: pd.DataFrame, name: str, target: str,
               text_columns: tuple[str, ...] = ()) -> DatasetSpec:
    """A spec from a file: numbers are numeric, long varied strings are text, others categories.

    Inferred numeric columns get no hard range (a user gives ranges in a spec file); the
    observed classes become the dataset's classes.
    """
    if target not in frame.columns:
        raise IngestError(
            f"target column {target!r} is not in the file; columns: {', '.join(frame.columns)}"
        )
    for column in text_columns:
        if column not in frame.columns:
            raise IngestError(f"text column {column!r} is not in the file")
    features: list[FeatureSpec] = []
    for column in frame.columns:
        if column == target:
            continue
        values = frame[column]
        if column in text_columns:
            features.append(FeatureSpec(name=column, type="text"))
        elif pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            strings = values.dropna().astype(str)
            prose = strings.str.len().mean() >= TEXT_MIN_MEAN_LENGTH
            if strings.nunique() > MAX_CATEGORIES and prose:
                features.append(FeatureSpec(name=column, type="text"))
            else:
                features.append(FeatureSpec(name=column, type="categorical",
                                            categories=tuple(sorted(strings.unique()))))
        else:
            features.append(FeatureSpec(name=column, type="numeric"))
    classes = tuple(sorted(frame[target].dropna().astype(str).unique()))
    kind: TaskKind = "text" if any(f.type == "text" for f in features) else "tabular"
    try:
        return DatasetSpec(name=name, kind=kind, features=tuple(features), target=target,
                           classes=classes, description="inferred from a user file")
    except ValueError as error:
        raise IngestError(f"cannot build a dataset spec from the file: {one_line(error)}"
                          ) from error


def conform(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The file's columns checked against the spec and converted to its types."""
    if spec.target not in frame.columns:
        raise IngestError(
            f"target column {spec.target!r} of dataset {spec.name!r} is missing from the file"
        )
    expected = [*spec.feature_names, spec.target]
    unknown = [c for c in frame.columns if c not in expected]
    if unknown:
        raise IngestError(
            f"unknown column(s) {', '.join(map(repr, unknown))} for dataset {spec.name!r}; "
            f"expected: {', '.join(expected)}"
        )
    missing = [c for c in spec.feature_names if c not in frame.columns]
    if missing:
        raise IngestError(f"missing column(s) {', '.join(map(repr, missing))} "
                          f"for dataset {spec.name!r}")
    out = pd.DataFrame(index=frame.index)
    for feature in spec.features:
        values = frame[feature.name]
        if feature.type == "numeric":
            numbers = pd.to_numeric(values, errors="coerce")
            wrong = numbers.isna() & values.notna()
            if wrong.any():
                row = int(wrong.to_numpy().argmax())
                raise IngestError(
                    f"column {feature.name!r} must be numeric, but row {row + 1} has "
                    f"{values.iloc[row]!r}"
                )
            out[feature.name] = numbers.astype(float)
        else:
            out[feature.name] = values.astype(object).where(values.notna(), None)
            out[feature.name] = out[feature.name].map(lambda v: v if v is None else str(v))
    labels = frame[spec.target]
    out[spec.target] = labels.astype(object).where(labels.notna(), None).map(
        lambda v: v if v is None else str(v))
    return out


def load_spec_file(path: Path, name: str) -> DatasetSpec:
    try:
        spec = DatasetSpec.from_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise IngestError(f"cannot read spec file {path}: {error}") from error
    except SpecError as error:
        raise IngestError(f"{path}: {error}") from error
    if spec.name != name:
        raise IngestError(f"spec file {path} describes dataset {spec.name!r}, not {name!r}")
    return spec


def _existing_spec(dataset: str) -> tuple[DatasetSpec | None, int]:
    """The registered spec (stored, or a built-in one) and the revision a new spec would get;
    a data home without a warehouse is only looked at, never created here."""
    if not get_settings().warehouse_path.exists():
        return (BUILTIN[dataset].spec if dataset in BUILTIN else None), 0
    with connect(read_only=True) as con:
        spec = stored_spec(con, dataset)
        revision = next_revision(con, dataset)
    if spec is None and dataset in BUILTIN:
        spec = BUILTIN[dataset].spec
    return spec, revision


def _check_spec_file(spec: DatasetSpec, spec_path: Path, dataset: str) -> None:
    """`--spec` for a dataset that has one already: fine when identical, refused otherwise."""
    given = load_spec_file(spec_path, dataset)
    if not given.same_as(spec):
        raise IngestError(
            f"dataset {dataset!r} already has a spec, and {spec_path} differs from it; "
            f"nothing was written (to change it: overnight datasets reset-spec {dataset} "
            f"--spec {spec_path})")


def ingest_file(
    dataset: str,
    path: Path,
    *,
    target: str | None = None,
    text_columns: tuple[str, ...] = (),
    batch_date: date | None = None,
    spec_path: Path | None = None,
    before_write: Callable[[], object] | None = None,
) -> StoredBatch:
    """Load a user's file as a batch of `dataset`; nothing is written if the file is refused.

    `before_write` runs once the file is accepted as a batch and before the first write (the
    command line creates the data home's warehouse there, so a refused file leaves a new data
    home exactly as it was).
    """
    path = Path(path)
    target = target.strip() if target is not None else None   # as the file's names are
    frame = read_user_file(path)
    spec, revision = _existing_spec(dataset)
    if spec is None:
        if spec_path is not None:
            spec = load_spec_file(spec_path, dataset)
        elif target is None:
            raise IngestError(f"dataset {dataset!r} is new: give --target (or --spec)")
        else:
            try:
                spec = infer_spec(frame, dataset, target, text_columns)
            except SpecError as error:
                raise IngestError(str(error)) from error
        spec = spec.model_copy(update={"revision": revision})
    else:
        if target is not None and target != spec.target:
            raise IngestError(f"dataset {dataset!r} has target {spec.target!r}, not {target!r}")
        if spec_path is not None:
            _check_spec_file(spec, spec_path, dataset)
    conformed = conform(frame, spec)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    when = batch_date or date.today()
    series = f"{dataset}-r{spec.revision}" if spec.revision else dataset
    if before_write is not None:
        before_write()
    return store_batch(
        spec, conformed, batch_id=f"{series}-{when.isoformat()}-{digest[:10]}",
        batch_date=when, source="file", source_file=str(path.resolve()), content_sha256=digest,
    )
