"""Scoring raw records with a loaded model: the one code path of the API and batch scoring.

A prediction's class follows the model's own decision rule (least expected cost for a
cost-sensitive model, otherwise the most probable class), its probabilities are given in the
order of the dataset's classes, and `needs_review` flags a prediction a person should check,
with the reason: more than half of the record's features missing (null, or blank text; an
imputed guess is not evidence, whatever the model's confidence), or confidence below the
spec's threshold. A model whose signed card holds a conformal calibration
(`models.evaluation.conformal`) replaces that threshold: each row gets its prediction set (the
classes that pass the calibrated threshold), and it needs review when the set holds more than
one class, none, or not the predicted class. Older models keep the confidence threshold.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from models.data.spec import DatasetSpec, feature_frame
from models.evaluation.conformal import ConformalRule
from models.evaluation.review import below_threshold
from models.learning.imbalance import CostSensitiveClassifier
from models.serving import prediction_ids


@dataclass(frozen=True)
class Scored:
    """Predictions of a frame of records, in the order of its rows."""

    classes: list[str]
    indices: np.ndarray          # index into the spec's classes
    probabilities: np.ndarray    # rows x spec classes
    seconds: float
    needs_review: np.ndarray     # bool per row
    review_reasons: list[str | None]
    # rows x spec classes, True where the class is in the row's conformal prediction set;
    # None for a model without a conformal calibration (the confidence threshold decides)
    prediction_sets: np.ndarray | None = None

    @property
    def confidence(self) -> np.ndarray:
        return self.probabilities[np.arange(len(self.indices)), self.indices]

    def class_names(self) -> list[str]:
        return [self.classes[i] for i in self.indices]

    def _distinct_sets(self) -> tuple[list[list[str]], np.ndarray]:
        """The distinct sets (class names) and each row's index among them: rows are told
        apart by a bit code per set (up to 62 classes), else by np.unique over rows."""
        sets = np.asarray(self.prediction_sets, dtype=bool)
        if sets.shape[1] <= 62:
            codes = sets.astype(np.int64) @ (np.int64(1) << np.arange(sets.shape[1],
                                                                     dtype=np.int64))
            _, first, inverse = np.unique(codes, return_index=True,
                                                 return_inverse=True)
            patterns = sets[first]
        else:
            patterns, inverse = np.unique(sets, axis=0, return_inverse=True)
        names = [[self.classes[j] for j in np.flatnonzero(p)] for p in patterns]
        return names, inverse.ravel()

    def set_texts(self) -> np.ndarray | None:
        """Each row's prediction set as JSON text (a file column), one dumps per distinct set."""
        if self.prediction_sets is None:
            return None
        if not len(self.prediction_sets):
            return np.array([], dtype=object)
        names, inverse = self._distinct_sets()
        return np.array([json.dumps(n) for n in names], dtype=object)[inverse]

    def set_names(self) -> list[list[str]] | None:
        """Each row's prediction set as class names (None without a calibration). Built per
        distinct set, not per row: a frame has few distinct sets, however many rows."""
        if self.prediction_sets is None:
            return None
        if not len(self.prediction_sets):
            return []
        names, inverse = self._distinct_sets()
        return [names[i] for i in inverse.tolist()]


def score_frame(model: Any, frame: pd.DataFrame, spec: DatasetSpec,
                rule: ConformalRule | None = None, *, model_ready: bool = False) -> Scored:
    """Class, class index and spec-ordered probabilities of every row of a raw frame; with a
    conformal `rule` (`ConformalRule.from_card` of the model's card), its prediction sets.
    `model_ready`: the frame is already `feature_frame(frame, spec)` (a `ColumnChecker` built
    it for this spec), so it goes to the model as it is."""
    start = time.perf_counter()
    x = frame if model_ready else feature_frame(frame, spec)
    raw = np.asarray(model.predict_proba(x), dtype=float)
    if isinstance(model, CostSensitiveClassifier):
        chosen = np.argmin(raw @ model.cost_, axis=1)
    else:
        chosen = np.argmax(raw, axis=1)
    position = {name: i for i, name in enumerate(spec.classes)}
    to_spec = np.array([position.get(str(c), -1) for c in model.classes_], dtype=int)
    known = to_spec >= 0
    probabilities = np.zeros((len(frame), len(spec.classes)))
    probabilities[:, to_spec[known]] = raw[:, known]
    indices = to_spec[chosen]
    if (indices < 0).any():
        unknown = sorted({str(model.classes_[c]) for c in chosen[indices < 0]})
        raise KeyError(f"classes {unknown} of the model are not classes of {spec.name}")
    confidence = probabilities[np.arange(len(frame)), indices]
    sets = rule.sets(probabilities) if rule is not None else None
    review, reasons = review_flags(frame, spec, confidence, sets=sets, indices=indices,
                                   rule=rule)
    return Scored(list(spec.classes), indices, probabilities, time.perf_counter() - start,
                  review, reasons, sets)


def missing_counts(frame: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """Per row, how many features are missing: null / NaN, or text that is blank."""
    counts = np.zeros(len(frame), dtype=np.int64)
    for feature in spec.features:       # column by column: no copy of the frame
        column = frame[feature.name]
        missing = pd.isna(column.to_numpy())
        if feature.type == "text":
            missing |= (column.astype("string").str.strip() == "").fillna(True).to_numpy(
                dtype=bool)
        counts += missing
    return counts


def review_flags(frame: pd.DataFrame, spec: DatasetSpec, confidence: np.ndarray, *,
                 sets: np.ndarray | None = None, indices: np.ndarray | None = None,
                 rule: ConformalRule | None = None) -> tuple[np.ndarray, list[str | None]]:
    """`needs_review` and its reason per row (None when no review is needed).

    Mostly missing (more than half the features) comes first: the model then answers from
    imputed values, so its confidence says little about the record. Then, with conformal
    `sets` (and the predicted `indices`), a set that is not exactly the predicted class;
    without, confidence below the spec's threshold.
    """
    total = len(spec.feature_names)
    missing = missing_counts(frame, spec)
    if sets is not None and indices is not None:
        size = sets.sum(axis=1)
        holds = sets[np.arange(len(indices)), indices]
        low = (size != 1) | ~holds
    else:
        size = holds = None
        low = below_threshold(confidence, spec.confidence_threshold)
    reasons: list[str | None] = [None] * len(confidence)
    flagged = np.flatnonzero((missing * 2 > total) | low)
    rate = f" at error rate {rule.error_rate:g}" if rule is not None else ""
    for i, count, is_low, value in zip(flagged.tolist(), missing[flagged].tolist(),
                                       low[flagged].tolist(), confidence[flagged].tolist(),
                                       strict=True):
        if count == total:
            reasons[i] = "all features missing"
        elif count * 2 > total:
            reasons[i] = f"{count} of {total} features missing"
        elif is_low and size is not None and holds is not None:
            reasons[i] = (f"prediction set holds {int(size[i])} classes{rate}"
                          if size[i] != 1 else
                          f"prediction set{rate} does not hold the predicted class")
        elif is_low:
            reasons[i] = (f"confidence {value:.3f} below the threshold "
                          f"{spec.confidence_threshold}")
    review = np.zeros(len(confidence), dtype=bool)
    review[flagged] = True
    return review, reasons


def new_prediction_ids(count: int) -> list[str]:
    """Signed prediction ids (see `prediction_ids`): feedback can prove we answered them."""
    return prediction_ids.mint_many(count)


def log_block(scored: Scored, frame: pd.DataFrame, spec: DatasetSpec, *, ids: list[str],
              model_version: str, alias: str, role: str, request_id: str | None,
              latency_ms: float | None = None, source_file: str | None = None
              ) -> dict[str, Any]:
    """The prediction-log rows of a scored frame as one column block: values that are the
    same for every row once, the others as arrays (written by `wal.encode_blocks`, landed
    as the columns of the warehouse `predictions`). A missing input is logged as null."""
    inputs: dict[str, Any] = {}
    for feature in spec.features:
        column = frame[feature.name]
        inputs[feature.name] = (np.ascontiguousarray(column.to_numpy(dtype=float))
                                if feature.type == "numeric"
                                else column.to_numpy(dtype=object, na_value=None).tolist())
    return {
        "prediction_id": ids, "dataset": spec.name, "model_version": model_version,
        "alias": alias, "role": role, "request_id": request_id,
        "predicted_at": datetime.now(UTC).replace(tzinfo=None).isoformat(),
        "predicted_class": scored.class_names(), "predicted_index": scored.indices,
        "confidence": scored.confidence, "needs_review": scored.needs_review,
        "classes": list(scored.classes), "probabilities": scored.probabilities.round(6),
        "inputs": inputs, "latency_ms": latency_ms, "source_file": source_file,
    }
