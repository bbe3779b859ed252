"""Evidently's part of drift: the HTML report a person reads, and Evidently's own verdict.

Why it exists. The stored verdict is ours, computed on all rows (`monitoring.drift.nightly`),
because Evidently's DataDriftPreset on a million rows is too slow and too big; Evidently still
renders the HTML, on bounded samples (`sample_rows`) of reference and current, with the
all-rows verdict put at its top (`render_html`). `evidently_verdict` runs Evidently's preset
on full frames and reads its verdict back: the yardstick the tests and the benchmark hold our
verdict to. Evidently is imported inside the functions (it takes seconds to import), so
importing this module is cheap.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from models.data.spec import DatasetSpec, feature_frame
from monitoring.drift.profile import prediction_column
from monitoring.drift.statistics import words_and_tokens
from monitoring.drift.verdict import ColumnDrift, DriftError, DriftSummary

HTML_SAMPLE_ROWS = 5_000
MIN_LABELLED_FOR_PERFORMANCE = 1_000

# Evidently's display names of its stattests (what snapshot.dict() shows) -> registered names.
EVIDENTLY_METHODS = {
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
}


def _definition(spec: DatasetSpec, frame: pd.DataFrame, extra_numeric: list[str],
                prediction: str | None, classification: bool) -> Any:
    """Evidently's DataDefinition of the frames (with the classification task, if asked for)."""
    from evidently import BinaryClassification, DataDefinition, MulticlassClassification

    tasks = None
    if classification and prediction is not None:
        if len(spec.classes) == 2 and "_proba" in frame.columns:
            tasks = [BinaryClassification(target=spec.target, prediction_labels=prediction,
                                          prediction_probas="_proba", pos_label=spec.classes[-1])]
        else:
            tasks = [MulticlassClassification(target=spec.target, prediction_labels=prediction)]
    return DataDefinition(
        numerical_columns=spec.features_of_type("numeric") + extra_numeric,
        categorical_columns=spec.features_of_type("categorical")
        + ([prediction] if prediction else []),
        classification=tasks,
    )


def evidently_verdict(reference: pd.DataFrame, current: pd.DataFrame, spec: DatasetSpec,
                      columns: list[str] | None = None) -> DriftSummary:
    """Evidently's own DataDriftPreset verdict on the full frames (the yardstick we match).

    Runs `Report([DataDriftPreset(columns)], include_tests=True)` with the spec's numeric and
    categorical columns declared, and reads `snapshot.dict()`: each ValueDrift metric gives
    column, method, threshold and score; its test's status (FAIL = drift) gives the verdict;
    the DriftedColumnsCount test ("share less than 0.5") gives the dataset verdict. Text
    columns are left out unless listed (Evidently judges them with a domain classifier).
    """
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = columns or spec.features_of_type("numeric") + spec.features_of_type("categorical")
    definition = _definition(spec, reference, [], None, False)
    snapshot = Report([DataDriftPreset(columns=columns)], include_tests=True).run(
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
        current_data=Dataset.from_pandas(current[columns], data_definition=definition))
    result = snapshot.dict()
    status = {t["metric_config"]["metric_id"]: t["status"] for t in result["tests"]}
    found: list[ColumnDrift] = []
    share_failed = False
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            kind = "numeric" if config["column"] in spec.features_of_type("numeric") else (
                "categorical")
            found.append(ColumnDrift(
                config["column"], kind, EVIDENTLY_METHODS.get(config["method"], config["method"]),
                float(metric["value"]), float(config["threshold"]),
                status.get(metric["id"]) == "FAIL"))
        elif config["type"].endswith("DriftedColumnsCount"):
            share_failed = status.get(metric["id"]) == "FAIL"
    summary = DriftSummary(spec.name, len(reference), len(current), tuple(found))
    if summary.dataset_drift != share_failed:      # both rules must be the same one
        raise AssertionError("Evidently's dataset verdict differs from share >= drift_share")
    return summary


def _summary_html(summary: DriftSummary, note: str) -> str:
    """A plain table of the all-rows verdict, put at the top of Evidently's HTML."""
    rows = "".join(
        f"<tr><td>{html.escape(c.column)}</td><td>{c.column_type}</td><td>{c.method}</td>"
        f"<td>{c.score:.4g}</td><td>{c.threshold:.4g}</td>"
        f"<td style='color:{'#b00' if c.drifted else '#080'}'>"
        f"{'drift' if c.drifted else 'no drift'}</td></tr>" for c in summary.columns)
    verdict = "DATASET DRIFT" if summary.dataset_drift else "no dataset drift"
    return (
        "<div style='font-family:sans-serif;margin:1em;padding:1em;border:1px solid #ccc'>"
        f"<h2>Drift of {html.escape(summary.dataset)}, "
        + (f"batch {html.escape(str(summary.batch_id))}" if summary.batch_id is not None
           else "served traffic") +
        f", night {summary.night_date}, model {html.escape(str(summary.model_version))}</h2>"
        f"<p><b>{verdict}</b>: {summary.n_drifted} of {summary.n_columns} columns drifted "
        f"(share {summary.share_drifted:.2f}, dataset drift at >= {summary.drift_share}). "
        f"Verdict computed on all {summary.n_current} rows against {summary.n_reference} "
        f"reference rows. {html.escape(note)}</p>"
        "<table border='1' cellpadding='4' style='border-collapse:collapse'><tr><th>column"
        "</th><th>type</th><th>method</th><th>score</th><th>threshold</th><th>verdict</th>"
        f"</tr>{rows}</table></div>"
    )


def render_html(reference: pd.DataFrame, current: pd.DataFrame, spec: DatasetSpec,
                summary: DriftSummary, path: Path, *, model: Any = None,
                sample_rows: int = HTML_SAMPLE_ROWS, seed: int = 0) -> Path:
    """Evidently's HTML on bounded samples, with the all-rows verdict at its top.

    DataDriftPreset over numeric and categorical features, text word counts and the predicted
    class; plus ClassificationPreset when the batch has labels (all rows labelled, or at least
    MIN_LABELLED_FOR_PERFORMANCE labelled rows, which are then the sample) and predictions.
    """
    from evidently import Dataset, Report
    from evidently.presets import ClassificationPreset, DataDriftPreset

    predicted = prediction_column(spec)
    has_prediction = predicted in current.columns and predicted in reference.columns
    pool = current
    note = f"The Evidently sections below use samples of at most {sample_rows} rows."
    classification = False
    if has_prediction and spec.target in current.columns and spec.target in reference.columns:
        labelled = current[spec.target].notna()
        if labelled.all() or labelled.sum() >= MIN_LABELLED_FOR_PERFORMANCE:
            classification = True
            pool = current[labelled]
            reference = reference[reference[spec.target].notna()]
            if not labelled.all():
                note += f" They use the {int(labelled.sum())} labelled rows only."
        elif labelled.any():
            note += (f" Only {int(labelled.sum())} rows are labelled: too few for the "
                     "classification section.")
    frames = [f.sample(n=sample_rows, random_state=seed) if len(f) > sample_rows else f
              for f in (reference, pool)]
    extra = [f"{c}:word_count" for c in spec.features_of_type("text")]
    prepared = []
    for frame in frames:
        frame = frame.copy()
        for column in spec.features_of_type("text"):
            counts, _ = words_and_tokens(frame[column].fillna(""))
            frame[f"{column}:word_count"] = counts
        if classification:
            frame[spec.target] = frame[spec.target].astype(str)
            if len(spec.classes) == 2 and model is not None:
                proba = model.predict_proba(feature_frame(frame, spec))
                classes = [str(c) for c in model.classes_]
                frame["_proba"] = proba[:, classes.index(spec.classes[-1])]
        prepared.append(frame)
    definition = _definition(spec, prepared[1], extra, predicted if has_prediction else None,
                             classification)
    columns = (spec.features_of_type("numeric") + spec.features_of_type("categorical") + extra
               + ([predicted] if has_prediction else []))

    def run(with_classification: bool) -> str:
        metrics: list[Any] = [DataDriftPreset(columns=columns)]
        if with_classification:
            metrics.append(ClassificationPreset())
        snapshot = Report(metrics).run(
            reference_data=Dataset.from_pandas(prepared[0], data_definition=definition),
            current_data=Dataset.from_pandas(prepared[1], data_definition=definition))
        return str(snapshot.get_html_str(as_iframe=False))

    try:
        try:
            document = run(classification)
        except Exception as error:      # e.g. labels Evidently cannot score: keep the drift
            if not classification:
                raise
            note += (f" The classification section was left out: Evidently failed on it "
                     f"({type(error).__name__}: {error}).")
            definition = _definition(spec, prepared[1], extra,
                                     predicted if has_prediction else None, False)
            document = run(False)
    except Exception as error:  # Evidently's failure must not pass as a crash of the night
        raise DriftError(f"Evidently could not render the drift report of {spec.name}: "
                         f"{type(error).__name__}: {error}") from error
    header = _summary_html(summary, note)
    document = document.replace("<body>", "<body>" + header, 1) if "<body>" in document else (
        header + document)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=".drift-", suffix=".html", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(document)
    os.replace(scratch, path)
    return path
