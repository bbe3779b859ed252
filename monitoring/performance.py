"""Model performance by day, over the predictions whose labels have arrived.

Labels come late: from the `feedback` table (one label per prediction, whenever it arrives) or
with a later nightly batch that carries its target, which `record_batch_labels` turns into
predictions and feedback (`score_batch_with` scores a nightly batch with the champion for
that). SQL pulls the (predicted, label) pairs of non-shadow predictions; scikit-learn computes
accuracy, macro F1 and per-class recall per (day of prediction, model version), with the
number of labelled rows each figure rests on.

This module only measures. It must not decide anything (that is `monitoring.policy`), raise
alerts, or write anything except a batch's own predictions and labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from itertools import groupby
from typing import Any

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, recall_score

from models.data.batches import StoredBatch, load_batch
from models.data.datasets import get_spec
from models.registry.versions import load_model
from warehouse import connect, transaction
from warehouse.errors import OvernightError

COLUMNS = ("day", "model_version", "n_labelled", "accuracy", "f1_macro", "recall_per_class")


class PerformanceError(OvernightError):
    """Inputs that cannot describe one batch's predictions and labels."""


def _metrics(predicted: list[str], labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro F1 (over classes seen or predicted) and recall of each true class."""
    seen = sorted(set(labels))
    recalls = recall_score(labels, predicted, labels=seen, average=None, zero_division=0)
    return {
        "n_labelled": len(labels),
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1_macro": float(f1_score(labels, predicted, average="macro", zero_division=0)),
        "recall_per_class": {name: float(r) for name, r in zip(seen, recalls, strict=True)},
    }


def daily_performance(dataset: str, *, start: date | None = None, end: date | None = None,
                      model_version: str | None = None) -> pd.DataFrame:
    """One row per (day, model_version) with labelled predictions in [start, end].

    The day is the day of the prediction, not of its label. Shadow predictions and
    predictions without a label are not counted.
    """
    with connect(read_only=True) as con:
        rows = con.execute(
            "SELECT CAST(p.predicted_at AS DATE) AS day, p.model_version, p.predicted_class,"
            " f.label FROM predictions p JOIN feedback f USING (prediction_id)"
            " WHERE p.dataset = $dataset AND p.role <> 'shadow'"
            " AND ($start::DATE IS NULL OR CAST(p.predicted_at AS DATE) >= $start::DATE)"
            " AND ($end::DATE IS NULL OR CAST(p.predicted_at AS DATE) <= $end::DATE)"
            " AND ($version::VARCHAR IS NULL OR p.model_version = $version::VARCHAR)"
            " ORDER BY day, p.model_version",
            {"dataset": dataset, "start": start, "end": end, "version": model_version},
        ).fetchall()
    records = []
    for (day, version), pairs in groupby(rows, key=lambda r: (r[0], r[1])):
        pairs_list = list(pairs)
        records.append({"day": day, "model_version": version,
                        **_metrics([p[2] for p in pairs_list], [p[3] for p in pairs_list])})
    return pd.DataFrame(records, columns=list(COLUMNS))


def performance_on(dataset: str, model_version: str, day: date) -> dict[str, Any] | None:
    """One day's figures of one model version, or None when nothing of that day is labelled."""
    frame = daily_performance(dataset, start=day, end=day, model_version=model_version)
    return None if frame.empty else frame.iloc[0].to_dict()


def _as_timestamp(moment: date | datetime) -> datetime:
    return moment if isinstance(moment, datetime) else datetime.combine(moment, time())


def record_batch_labels(
    dataset: str,
    batch_id: str,
    model_version: str,
    predicted: Sequence[str],
    labels: Sequence[str | None],
    predicted_at: date | datetime,
    prediction_ids: Sequence[str] | None = None,
) -> int:
    """Store a labelled batch's predictions (role 'batch') and labels, in one transaction.

    Prediction ids default to f"{batch_id}:{row}"; the batch id is kept as `request_id`.
    Re-running the same batch replaces its predictions and labels, never duplicates them.
    Rows whose label is None get a prediction and no feedback. Returns the labelled count.
    """
    ids = prediction_ids or [f"{batch_id}:{row}" for row in range(len(predicted))]
    if not (len(ids) == len(predicted) == len(labels)):
        raise PerformanceError(
            f"batch {batch_id}: {len(predicted)} predictions, {len(labels)} labels and "
            f"{len(ids)} prediction ids; they must be the same length")
    when = _as_timestamp(predicted_at)
    incoming = pd.DataFrame({"prediction_id": list(ids), "predicted_class": list(predicted),
                             "label": list(labels)})
    with transaction() as con:
        con.register("incoming_labels", incoming)
        try:
            con.execute(
                "DELETE FROM feedback WHERE prediction_id IN (SELECT prediction_id FROM predictions"
                " WHERE dataset = $d AND role = 'batch' AND request_id = $b)"
                " OR prediction_id IN (SELECT prediction_id FROM incoming_labels)",
                {"d": dataset, "b": batch_id})
            con.execute(
                "DELETE FROM predictions WHERE (dataset = $d AND role = 'batch'"
                " AND request_id = $b)"
                " OR prediction_id IN (SELECT prediction_id FROM incoming_labels)",
                {"d": dataset, "b": batch_id})
            con.execute(
                "INSERT INTO predictions (prediction_id, dataset, model_version, role,"
                " request_id, predicted_at, predicted_class)"
                " SELECT prediction_id, $d, $v, 'batch', $b, $t, CAST(predicted_class AS VARCHAR)"
                " FROM incoming_labels",
                {"d": dataset, "v": model_version, "b": batch_id, "t": when})
            con.execute(
                "INSERT INTO feedback (prediction_id, label, received_at, source)"
                " SELECT prediction_id, CAST(label AS VARCHAR), $t, 'batch' FROM incoming_labels"
                " WHERE label IS NOT NULL", {"t": when})
        finally:
            con.unregister("incoming_labels")
    return int(incoming["label"].notna().sum())


@dataclass(frozen=True)
class BatchScore:
    """A batch scored by one model version: how many of its rows carried a label, and the
    accuracy on those (None when none did)."""

    model_version: str
    n_rows: int
    n_labelled: int
    accuracy: float | None


def score_batch_with(model_version: str, batch: StoredBatch, predicted_at: date | datetime
                     ) -> BatchScore:
    """Score a stored batch with a registered model and keep its labelled rows as evidence.

    Every row gets a prediction (role 'batch', see `record_batch_labels`); the rows whose
    target is known become that day's performance evidence. A re-run replaces them.
    """
    with connect(read_only=True) as con:
        spec = get_spec(con, batch.dataset)
    frame = load_batch(spec, batch.batch_id)
    model, _ = load_model(model_version)
    predicted = [str(p) for p in model.predict(frame[spec.feature_names])]
    labels = [None if v is None or v != v else str(v) for v in frame[spec.target]]
    record_batch_labels(batch.dataset, batch.batch_id, model_version, predicted, labels,
                        predicted_at)
    labelled = [(p, t) for p, t in zip(predicted, labels, strict=True) if t is not None]
    accuracy = (sum(p == t for p, t in labelled) / len(labelled)) if labelled else None
    return BatchScore(model_version, len(predicted), len(labelled), accuracy)
