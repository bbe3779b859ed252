"""The nightly drift report: one batch against the champion's profile, stored and rendered.

Why it exists. This is where the night enters the package (`run_drift_report`, called by the
night's monitor stage): it reads the batch and the champion from the warehouse and the
registry, checks the batch, scores it with the champion, computes the all-rows verdict against
the champion's reference profile (`compute_drift`, also used by the policy backtest), renders
the HTML under `reports/drift/DATASET/DATE.html`, and only then writes `drift_reports` /
`drift_columns` in one transaction (`write_summary`). Everything that can fail is done before
anything is written, and the warehouse is never held open while it computes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from models.data.batches import load_batch
from models.data.datasets import get_spec
from models.data.spec import DatasetSpec
from models.registry.artifacts import REFERENCE_FILE
from models.registry.versions import get_version, load_model
from monitoring.drift.evidently_report import HTML_SAMPLE_ROWS, render_html
from monitoring.drift.profile import (
    ReferenceProfile,
    check_frame,
    predict_labels,
    prediction_column,
    profile_for_version,
)
from monitoring.drift.statistics import (
    category_counts,
    counts_test,
    finite_values,
    numeric_test,
    oov_share,
    oov_threshold,
    words_and_tokens,
)
from monitoring.drift.verdict import DRIFT_SHARE, ColumnDrift, DriftError, DriftSummary, json_float
from warehouse import connect, get_settings, transaction
from warehouse.errors import OvernightError


def compute_drift(current: pd.DataFrame, profile: ReferenceProfile, spec: DatasetSpec, *,
                  drift_share: float = DRIFT_SHARE) -> DriftSummary:
    """The drift verdict of a batch against a reference profile, on all of the batch's rows.

    `current` holds the spec's features and, optionally, the champion's predicted classes in
    the column `prediction_column(spec)`; those are compared with the profile's reference
    predictions when it has them. Raises DriftError (naming every problem) on an empty
    batch, a missing column or a column with no values.
    """
    check_frame(current, spec, "batch")
    absent = [c for c in spec.features_of_type("numeric") if c not in profile.numeric]
    absent += [c for c in spec.features_of_type("categorical") if c not in profile.categorical]
    absent += [c for c in spec.features_of_type("text") if c not in profile.text]
    if absent:
        raise DriftError(f"cannot compute drift for {spec.name}: the reference profile has no "
                         f"column(s) {', '.join(absent)} (was it built for another spec?)")
    results: list[ColumnDrift] = []
    for feature in spec.features:
        name = feature.name
        if feature.type == "numeric":
            results.append(ColumnDrift(name, "numeric", *numeric_test(
                profile.numeric[name], finite_values(current[name]))))
        elif feature.type == "categorical":
            results.append(ColumnDrift(name, "categorical", *counts_test(
                profile.categorical[name], category_counts(current[name]))))
        else:
            reference = profile.text[name]
            word_counts, tokens = words_and_tokens(current[name])
            results.append(ColumnDrift(f"{name}:word_count", "text",
                                       *numeric_test(reference.word_counts, word_counts)))
            share = oov_share(tokens, reference.vocabulary)
            limit = oov_threshold(reference.baseline_oov)
            results.append(ColumnDrift(f"{name}:oov_share", "text", "oov_share", share, limit,
                                       share >= limit))
    predicted = prediction_column(spec)
    if profile.prediction and predicted in current.columns:
        results.append(ColumnDrift(predicted, "prediction", *counts_test(
            profile.prediction, category_counts(current[predicted]))))
    return DriftSummary(spec.name, profile.n_rows, len(current), tuple(results), drift_share)


def report_id(batch_id: str, model_version: str) -> str:
    """Deterministic: re-running a night replaces its report instead of adding one."""
    return f"{batch_id}:{model_version}"


def html_path_for(dataset: str, night_date: date) -> Path:
    return get_settings().reports_dir / "drift" / dataset / f"{night_date.isoformat()}.html"


def write_summary(summary: DriftSummary, *, source: str = "batch",
                  window: tuple[datetime | None, datetime | None] = (None, None),
                  extra: tuple[ColumnDrift, ...] = ()) -> None:
    """One drift_reports row and its drift_columns rows, replacing any earlier copy, at once.

    `source` says what was measured ('batch', or 'served' traffic over `window`); `extra`
    are verdicts stored beside the report's columns but not counted in its share (the served
    report's check of predicted classes against the training labels)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with transaction() as con:
        con.execute("DELETE FROM drift_columns WHERE report_id = ?", [summary.report_id])
        con.execute("DELETE FROM drift_reports WHERE report_id = ?", [summary.report_id])
        con.execute(
            "INSERT INTO drift_reports (report_id, dataset, batch_id, model_version, night_date,"
            " n_reference, n_current, n_columns, n_drifted, share_drifted, dataset_drift,"
            " html_path, created_at, source, window_start, window_end)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [summary.report_id, summary.dataset, summary.batch_id, summary.model_version,
             summary.night_date, summary.n_reference, summary.n_current, summary.n_columns,
             summary.n_drifted, summary.share_drifted, summary.dataset_drift,
             summary.html_path, now, source, window[0], window[1]])
        con.executemany(
            "INSERT INTO drift_columns VALUES (?, ?, ?, ?, ?, ?, ?)",
            [[summary.report_id, c.column, c.column_type, c.method, json_float(c.score),
              c.threshold, c.drifted] for c in (*summary.columns, *extra)])


def run_drift_report(dataset: str, batch_id: str, model_version: str | None, *,
                     night_date: date, sample_rows: int = HTML_SAMPLE_ROWS) -> DriftSummary:
    """Compare one stored batch with the champion's reference; store the verdict and HTML.

    `model_version` is the champion; None (no champion yet) raises DriftError "no reference"
    so the caller can skip the stage. Everything is computed before anything is written; the
    warehouse rows land in one transaction; the HTML is written atomically just before.
    """
    if model_version is None:
        raise DriftError(f"no reference for {dataset}: there is no champion model yet, so "
                         "there is nothing to compare the batch with (skip drift tonight)")
    try:
        with connect(read_only=True) as con:
            spec = get_spec(con, dataset)
            batch = con.execute(
                "SELECT dataset, status, quarantine_reason FROM batches WHERE batch_id = ?",
                [batch_id]).fetchone()
            version = get_version(model_version, con)
    except OvernightError as error:
        if isinstance(error, DriftError):
            raise
        raise DriftError(f"drift report of {dataset}/{batch_id}: {error}") from error
    if batch is None:
        raise DriftError(f"no batch {batch_id!r} in the warehouse")
    if batch[0] != dataset or version.dataset != dataset:
        raise DriftError(f"batch {batch_id} ({batch[0]}) and model {model_version} "
                         f"({version.dataset}) must both belong to dataset {dataset}")
    frame = load_batch(spec, batch_id)
    if frame.empty:
        why = f" (it is {batch[1]}: {batch[2]})" if batch[2] else ""
        raise DriftError(f"cannot compute drift for {dataset}: batch {batch_id} has no rows "
                         f"to compare{why}")
    check_frame(frame, spec, f"batch {batch_id}")
    try:
        model, version = load_model(version)
    except OvernightError as error:
        raise DriftError(f"drift report of {dataset}/{batch_id}: {error}") from error
    profile = profile_for_version(version, spec=spec, model=model)
    predicted = prediction_column(spec)
    current = frame.assign(**{predicted: predict_labels(model, frame, spec)})
    summary = compute_drift(current, profile, spec)
    path = html_path_for(dataset, night_date)
    summary = replace(summary, batch_id=batch_id, model_version=model_version,
                      night_date=night_date, report_id=report_id(batch_id, model_version),
                      html_path=str(path))
    reference = pd.read_parquet(version.artifact_path.parent / REFERENCE_FILE)
    reference = reference.assign(**{predicted: predict_labels(model, reference, spec)})
    render_html(reference, current, spec, summary, path, model=model, sample_rows=sample_rows)
    write_summary(summary)
    return summary
