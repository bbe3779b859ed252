"""Drift of served traffic: the inputs served since the last night, judged inside DuckDB.

Why it exists. The batch report (`monitoring.drift.nightly`) judges the night's batch; what
was really served (roles served and batch, typed by `served_store` when the logs were
collected) can be tens of millions of rows, so it is never loaded into pandas: one DuckDB scan
over the typed Parquet files reduces every column to small aggregates (category counts;
counts at the reference values for KS; count and sum per cell of an equal-width grid for
Wasserstein), and `served_stats` turns them into the verdict
today's in-memory path would give on the same rows (same tests, thresholds and rules; see
that module for why each is exact, and when Wasserstein needs its exact SQL fallback). Text
columns stream through in record batches (word counts and tokens accumulate; no batch holds
more than `TEXT_BATCH_ROWS` texts).

Beside the per-column verdicts (features, and the served predicted classes against the
champion's predictions on its reference), the served report checks the served predicted
classes against the training class distribution (the labels of the reference rows): stored
as the extra column `prediction:training_labels`, not counted in the drifted share, so the
share means the same thing for both sources.

`run_served_report` is the night's entry point: the typed files no served report has taken
yet, the verdict, the Evidently HTML on a bounded sample (`reports/drift/DATASET/
DATE-served.html`), then the rows (drift_reports.source = 'served') and the files marked
as taken. No served rows: `NoServedTraffic`, and nothing is written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from models.data.datasets import get_spec
from models.data.spec import DatasetSpec
from models.registry.artifacts import REFERENCE_FILE
from models.registry.versions import get_version, load_model
from monitoring.drift.evidently_report import HTML_SAMPLE_ROWS, render_html
from monitoring.drift.nightly import compute_drift, write_summary
from monitoring.drift.profile import (
    ReferenceProfile,
    predict_labels,
    prediction_column,
    profile_for_version,
)
from monitoring.drift.served_stats import (
    boundaries,
    cell_grid,
    counts_test,
    cumulative_at,
    few_values,
    ks_from_counts,
    le_lt,
    numeric_test_counts,
    wasserstein_cell_bounds,
    wasserstein_verdict,
)
from monitoring.drift.served_store import column_map, files_to_report
from monitoring.drift.statistics import (
    FEW_VALUES,
    SMALL_REFERENCE,
    oov_share,
    oov_threshold,
    words_and_tokens,
)
from monitoring.drift.verdict import DRIFT_SHARE, ColumnDrift, DriftError, DriftSummary
from warehouse import connect, get_settings, transaction
from warehouse.errors import OvernightError

MEMORY_LIMIT = "600MB"          # DuckDB spills to disk beyond this (the 1 GB goal)
TEXT_BATCH_ROWS = 50_000
SOURCE = "read_parquet($files)"
TRAINING_LABELS = "prediction:training_labels"


class NoServedTraffic(DriftError):
    """Nothing was served (and typed) since the last served report: no report tonight."""


def scanner(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with bounded memory, for scans of typed files."""
    con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT})
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
    rows = con.execute(sql, params).fetchall()     # every row fetched: the result is done
    return tuple(rows[0])


def _exact_wasserstein(con: duckdb.DuckDBPyConnection, files: list[str], column: str,
                       reference_sorted: np.ndarray) -> float:
    """The exact first Wasserstein distance of one typed column (a sort inside DuckDB)."""
    values, counts = np.unique(reference_sorted, return_counts=True)
    sql = (
        f"WITH cur AS (SELECT {column} AS x, count(*)::DOUBLE AS n FROM {SOURCE}"
        f" WHERE isfinite({column}) GROUP BY 1),"
        " ref AS (SELECT unnest($rv::DOUBLE[]) AS x, unnest($rc::DOUBLE[]) AS n),"
        " pooled AS (SELECT x, sum(nc) AS nc, sum(nr) AS nr FROM (SELECT x, n AS nc, 0 AS nr"
        " FROM cur UNION ALL SELECT x, 0, n FROM ref) GROUP BY x),"
        " steps AS (SELECT lead(x) OVER w - x AS dx, sum(nc) OVER w / $n AS fc,"
        " sum(nr) OVER w / $m AS fr FROM pooled WINDOW w AS (ORDER BY x))"
        " SELECT sum(abs(fr - fc) * dx) FROM steps WHERE dx IS NOT NULL")
    n = _one(con, f"SELECT count(*) FROM {SOURCE} WHERE isfinite({column})", {"files": files})
    found = _one(con, sql, {"files": files, "rv": values.tolist(),
                            "rc": counts.astype(float).tolist(), "n": float(n[0]),
                            "m": float(len(reference_sorted))})
    return float(found[0] or 0.0)


def _numeric(con: duckdb.DuckDBPyConnection, files: list[str], column: str,
             reference: np.ndarray, found: dict[str, Any]) -> tuple[str, float, float, bool]:
    """The verdict of one typed numeric column, from the main scan's aggregates."""
    n = int(found["n"])
    ref_values = np.unique(reference)
    if len(ref_values) <= FEW_VALUES:
        new = _one(con, f"SELECT count(*) FROM (SELECT DISTINCT {column} FROM {SOURCE}"
                   f" WHERE isfinite({column}) AND NOT list_contains($ref, {column})"
                   f" LIMIT {FEW_VALUES + 1})", {"files": files, "ref": ref_values.tolist()})
        if few_values(reference, int(new[0])):
            rows = con.execute(f"SELECT {column}, count(*) FROM {SOURCE}"
                               f" WHERE isfinite({column}) GROUP BY 1", {"files": files}
                               ).fetchall()
            ref_counts = dict(zip(*np.unique(reference, return_counts=True), strict=True))
            return counts_test(ref_counts, {float(v): int(c) for v, c in rows})
    if len(reference) <= SMALL_REFERENCE:
        bounds = found["bounds"]
        values, le, lt = le_lt(reference, bounds, cumulative_at(bounds, found["histogram"]))
        return ks_from_counts(reference, values, le, lt, n)
    exact = lambda: _exact_wasserstein(con, files, column, reference)  # noqa: E731
    lo, width, cells = cell_grid(reference)
    if width <= 0:
        return wasserstein_verdict(reference, (0.0, 0.0, np.inf), exact)
    grid = con.execute(
        f"SELECT cell, count(*) AS k, sum(x) AS s FROM (SELECT CAST(least(greatest(floor(({column}"
        f" - $lo) / $width), -1), {int(cells)}) AS INTEGER) AS cell, {column} AS x"
        f" FROM {SOURCE} WHERE isfinite({column})) GROUP BY cell",
        {"files": files, "lo": lo, "width": width}).fetchnumpy()
    estimate = wasserstein_cell_bounds(reference, grid["cell"].astype(np.int64),
                                       grid["k"].astype(float), grid["s"].astype(float))
    return wasserstein_verdict(reference, estimate, exact)


def _text(con: duckdb.DuckDBPyConnection, files: list[str], columns: dict[str, str]
          ) -> dict[str, tuple[Counter[float], Counter[str]]]:
    """Word-count value counts and token counts of each text column, streamed in batches."""
    out: dict[str, tuple[Counter[float], Counter[str]]] = {
        c: (Counter(), Counter()) for c in columns.values()}
    select = ", ".join(columns.values())
    reader = con.sql(f"SELECT {select} FROM {SOURCE}", params={"files": files}
                     ).to_arrow_reader(TEXT_BATCH_ROWS)
    assert reader is not None
    for batch in reader:
        for column in columns.values():
            texts = batch.column(column).to_pandas()
            counts, tokens = words_and_tokens(texts)
            values, times = np.unique(counts, return_counts=True)
            out[column][0].update(dict(zip(values.tolist(), times.tolist(), strict=True)))
            out[column][1].update(tokens)
    return out


def served_drift(files: list[str], profile: ReferenceProfile, spec: DatasetSpec, *,
                 drift_share: float = DRIFT_SHARE, threads: int | None = None
                 ) -> DriftSummary:
    """The drift verdict of typed served rows against a reference profile, out of core.

    The same columns, tests and rules as `nightly.compute_drift` on the same rows; raises
    DriftError on no rows or a column with no values (naming them), as it does.
    """
    mapping = {m["feature"]: m["column"] for m in column_map(spec)}
    known = {"numeric": set(profile.numeric), "categorical": set(profile.categorical),
             "text": set(profile.text)}
    absent = [f.name for f in spec.features if f.name not in known[f.type]]
    if absent:
        raise DriftError(f"cannot compute drift for {spec.name}: the reference profile has no "
                         f"column(s) {', '.join(absent)} (was it built for another spec?)")
    aggregates = ["count(*)", "histogram(predicted_class)"]
    params: dict[str, Any] = {"files": files}
    slots: dict[str, dict[str, Any]] = {}
    for feature in spec.features:
        column = mapping[feature.name]
        finite = f"isfinite({column})"
        if feature.type == "numeric":
            reference = profile.numeric[feature.name]
            small = len(reference) <= SMALL_REFERENCE
            bounds = boundaries(reference) if small else np.empty(0)
            if small:
                params[f"b_{column}"] = bounds.tolist()
            slots[feature.name] = {"start": len(aggregates), "bounds": bounds}
            aggregates += [
                f"count({column}) FILTER (WHERE {finite})",
                f"histogram({column}, $b_{column}::DOUBLE[]) FILTER (WHERE {finite})"
                if small else "NULL"]
        elif feature.type == "categorical":
            slots[feature.name] = {"start": len(aggregates)}
            aggregates += [f"histogram({column}) FILTER (WHERE {column} IS NOT NULL)"]
        else:
            slots[feature.name] = {"start": len(aggregates)}
            aggregates += [f"count({column})"]
    con = scanner(threads)
    try:
        row = _one(con, f"SELECT {', '.join(aggregates)} FROM {SOURCE}", params)
        n_rows = int(row[0])
        if n_rows == 0:
            raise DriftError(f"cannot compute drift for {spec.name}: the served traffic is "
                             "empty (no rows to compare)")
        empty = [name for name, slot in slots.items() if not row[slot["start"]]]
        if empty:
            raise DriftError(f"cannot compute drift for {spec.name}: column(s) "
                             f"{', '.join(empty)} of the served traffic have no values "
                             "(all missing)")
        texts = _text(con, files, {f: mapping[f] for f in spec.features_of_type("text")}) \
            if spec.features_of_type("text") else {}
        results: list[ColumnDrift] = []
        for feature in spec.features:
            name, column, start = feature.name, mapping[feature.name], slots[feature.name]["start"]
            if feature.type == "numeric":
                found = {"n": row[start], "histogram": dict(row[start + 1] or {}),
                         "bounds": slots[name]["bounds"]}
                results.append(ColumnDrift(name, "numeric", *_numeric(
                    con, files, column, profile.numeric[name], found)))
            elif feature.type == "categorical":
                counts = {str(k): int(v) for k, v in dict(row[start]).items()}
                results.append(ColumnDrift(name, "categorical", *counts_test(
                    profile.categorical[name], counts)))
            else:
                text = profile.text[name]
                word_counts, tokens = texts[column]
                values = np.array(list(word_counts), dtype=float)
                times = np.array(list(word_counts.values()), dtype=np.int64)
                results.append(ColumnDrift(f"{name}:word_count", "text", *numeric_test_counts(
                    text.word_counts, values, times)))
                share = oov_share(tokens, text.vocabulary)
                limit = oov_threshold(text.baseline_oov)
                results.append(ColumnDrift(f"{name}:oov_share", "text", "oov_share", share,
                                           limit, share >= limit))
        if profile.prediction:
            served = {str(k): int(v) for k, v in dict(row[1] or {}).items()}
            results.append(ColumnDrift(prediction_column(spec), "prediction", *counts_test(
                profile.prediction, served)))
    finally:
        con.close()
    return DriftSummary(spec.name, profile.n_rows, n_rows, tuple(results), drift_share)


def served_frame(files: list[str], spec: DatasetSpec, *, sample_rows: int | None = None,
                 seed: int = 0) -> pd.DataFrame:
    """Typed served rows as a frame with the spec's column names and the predicted class in
    `prediction_column(spec)`: a bounded sample for the HTML, or every row (the in-memory
    yardstick of the tests and the benchmark; never used by the night on all rows)."""
    mapping = column_map(spec)
    select = ", ".join(m["column"] for m in mapping)
    sample = (f" USING SAMPLE reservoir({int(sample_rows)} ROWS) REPEATABLE ({int(seed)})"
              if sample_rows else "")
    con = scanner()
    try:
        frame = con.execute(f"SELECT predicted_class, {select} FROM {SOURCE}{sample}",
                            {"files": files}).df()
    finally:
        con.close()
    names = {m["column"]: m["feature"] for m in mapping}
    names["predicted_class"] = prediction_column(spec)
    return frame.rename(columns=names)


def in_memory_drift(files: list[str], profile: ReferenceProfile, spec: DatasetSpec
                    ) -> DriftSummary:
    """Today's in-memory verdict on the same typed rows (all loaded): the yardstick."""
    return compute_drift(served_frame(files, spec), profile, spec)


def training_label_check(version_folder: Path, spec: DatasetSpec,
                         summary_counts: dict[str, int]) -> ColumnDrift | None:
    """Served predicted classes against the class distribution of the training reference."""
    path = version_folder / REFERENCE_FILE
    try:
        labels = pd.read_parquet(path, columns=[spec.target])[spec.target].dropna()
    except (OSError, KeyError, ValueError):
        return None
    if labels.empty or not summary_counts:
        return None
    reference = {str(k): int(v) for k, v in labels.astype(str).value_counts().items()}
    return ColumnDrift(TRAINING_LABELS, "prediction", *counts_test(reference, summary_counts))


def served_report_id(dataset: str, night_date: date) -> str:
    return f"served:{dataset}:{night_date.isoformat()}"


def served_html_path(dataset: str, night_date: date) -> Path:
    return (get_settings().reports_dir / "drift" / dataset
            / f"{night_date.isoformat()}-served.html")


def _predicted_counts(files: list[str]) -> dict[str, int]:
    con = scanner()
    try:
        rows = con.execute(f"SELECT predicted_class, count(*) FROM {SOURCE} GROUP BY 1",
                           {"files": files}).fetchall()
    finally:
        con.close()
    return {str(k): int(v) for k, v in rows}


def run_served_report(dataset: str, model_version: str | None, *, night_date: date,
                      sample_rows: int = HTML_SAMPLE_ROWS) -> DriftSummary:
    """The served-traffic drift report of one dataset's night: computed, rendered, stored.

    Raises NoServedTraffic when nothing was served since the last served report, DriftError
    when there is no champion or the report cannot be made; nothing is written then.
    """
    if model_version is None:
        raise DriftError(f"no reference for {dataset}: there is no champion model yet")
    report_id = served_report_id(dataset, night_date)
    try:
        with connect(read_only=True) as con:
            spec = get_spec(con, dataset)
            version = get_version(model_version, con)
    except OvernightError as error:
        if isinstance(error, DriftError):
            raise
        raise DriftError(f"served drift report of {dataset}: {error}") from error
    taken = files_to_report(dataset, spec, report_id)
    if not taken.n_rows:
        raise NoServedTraffic(f"no served traffic of {dataset} since the last served report")
    files = list(taken.paths)
    try:
        model, version = load_model(version)
    except OvernightError as error:
        raise DriftError(f"served drift report of {dataset}: {error}") from error
    profile = profile_for_version(version, spec=spec, model=model)
    summary = served_drift(files, profile, spec)
    path = served_html_path(dataset, night_date)
    summary = replace(summary, model_version=model_version, night_date=night_date,
                      report_id=report_id, html_path=str(path))
    check = training_label_check(version.artifact_path.parent, spec, _predicted_counts(files))
    reference = pd.read_parquet(version.artifact_path.parent / REFERENCE_FILE)
    reference = reference.assign(**{prediction_column(spec):
                                    predict_labels(model, reference, spec)})
    sample = served_frame(files, spec, sample_rows=sample_rows)
    render_html(reference, sample, spec, summary, path, model=model, sample_rows=sample_rows)
    write_summary(summary, source="served",
                  window=(taken.first_predicted_at, taken.last_predicted_at),
                  extra=(check,) if check else ())
    with transaction() as con:
        con.execute("UPDATE served_files SET report_id = ? WHERE list_contains(?, file_id)",
                    [report_id, list(taken.file_ids)])
    return summary
