"""Conformal review: split-conformal prediction sets decide which predictions need a person.

Why: the old rule (top probability below a fixed 0.6) says nothing about the error it buys.
A split-conformal prediction set (MAPIE's `SplitConformalClassifier`, LAC conformity score)
holds the true class of a new row with probability at least 1 - error_rate, whatever the
model, provided the calibration rows are exchangeable with the new ones and the model never
trained on them. A set of one class is a confident answer; a set of several classes (or none)
is exactly where the model cannot tell at that error rate, so that prediction needs review.

Which rows calibrate (see `calibration_part`): a stratified half of the run's held-out rows.
The served refit is fitted on every labelled row *except* that half, so the threshold stored
with it is calibrated on rows it never saw. The figures in the model report come from the
training-split fit (the one the gate judges), calibrated on the same half and measured on the
other half of the held-out rows, which it neither trained nor was calibrated on.

What is stored: LAC's threshold q (a class k is in the set when 1 - p_k <= q), the error rate
and the calibration size, as plain JSON in the signed model card (`CARD_KEY`): scoring needs
one float, never a second pickle. A card without it (a model registered before this change)
keeps the old confidence-threshold rule.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split

CARD_KEY = "conformal"
METHOD = "lac"
EPSILON = 1e-8              # MAPIE's own tolerance (mapie._machine_precision.EPSILON)
CALIBRATION_SHARE = 0.5     # of the held-out rows
CALIBRATION_SEED = 0        # the held-out split is already seeded; this only halves it


class ConformalError(ValueError):
    """A conformal entry of a model card that cannot be used (names what is wrong)."""


@dataclass(frozen=True)
class ConformalRule:
    """LAC prediction sets at one error rate: class k is in a row's set when 1 - p_k <= q."""

    error_rate: float
    threshold: float
    n_calibration: int
    method: str = METHOD

    def sets(self, probabilities: Any) -> np.ndarray:
        """Rows x classes booleans: which classes each row's prediction set holds."""
        proba = np.asarray(probabilities, dtype=float)
        return (1.0 - proba) - self.threshold <= EPSILON

    def to_card(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_card(cls, card: dict[str, Any] | None) -> ConformalRule | None:
        """The rule stored in a model card, or None for a card without one (old rule)."""
        entry = (card or {}).get(CARD_KEY)
        if not entry or entry.get("threshold") is None:
            return None
        try:
            rule = cls(error_rate=float(entry["error_rate"]), threshold=float(entry["threshold"]),
                       n_calibration=int(entry["n_calibration"]),
                       method=str(entry.get("method", METHOD)))
        except (KeyError, TypeError, ValueError) as error:
            raise ConformalError(f"conformal entry of the model card is malformed: {error!r}"
                                 ) from error
        if rule.method != METHOD or not 0 < rule.error_rate < 1 or not math.isfinite(
                rule.threshold):
            raise ConformalError(f"conformal entry of the model card is not usable: {entry}")
        return rule


def calibration_part(x_test: pd.DataFrame, y_test: pd.Series
                     ) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    """The held-out rows halved, stratified: (calibration x, y, evaluation x, y).

    A pure function of the held-out rows, so the flow's refit (which leaves the calibration
    half out) and the registration (which calibrates on it) agree without passing it around.
    """
    stratify = y_test if len(y_test) >= 4 and y_test.value_counts().min() >= 2 else None
    x_cal, x_eval, y_cal, y_eval = train_test_split(
        x_test, y_test, train_size=CALIBRATION_SHARE, stratify=stratify,
        random_state=CALIBRATION_SEED)
    return x_cal, y_cal, x_eval, y_eval


def calibration_rows(x_test: pd.DataFrame, y_test: pd.Series, error_rate: float
                     ) -> pd.Index:
    """Index labels (within the held-out rows) of the calibration half: what the served
    refit must leave out (`models.learning.fit.refit_full(..., leave_out=...)`); empty when
    the half is too small to calibrate at `error_rate`: the refit then keeps every row."""
    rows = calibration_part(x_test, y_test)[0].index
    return rows if calibrable(len(rows), error_rate) else rows[:0]


def calibrable(n: int, error_rate: float) -> bool:
    """Whether n calibration rows give a finite set at this error rate."""
    return conformal_quantile(np.zeros(n), error_rate) is not None


def conformal_quantile(scores: Any, error_rate: float) -> float | None:
    """The split-conformal order statistic: the ceil((n + 1)(1 - error_rate))-th smallest
    score (MAPIE's `_compute_classification_quantile`); None when n is too small for it."""
    values = np.sort(np.asarray(scores, dtype=float).ravel())
    n = len(values)
    rank = math.ceil((n + 1) * (1 - error_rate))
    if n == 0 or rank > n:
        return None
    return float(values[rank - 1])


def lac_scores(model: Any, x: pd.DataFrame, y: pd.Series, error_rate: float) -> np.ndarray:
    """LAC conformity scores (1 - probability of the true class) of calibration rows, by
    MAPIE's `SplitConformalClassifier` on the prefitted model. A row whose class the model
    never saw gets 1 (its probability is 0): dropping it would overstate coverage."""
    from mapie.classification import SplitConformalClassifier

    labels = y.astype(str).to_numpy()
    known = np.isin(labels, np.asarray(model.classes_).astype(str))
    scores = np.ones(len(labels))
    if known.any():
        mapie = SplitConformalClassifier(estimator=_Probabilities(model.classes_),
                                         confidence_level=1 - error_rate,
                                         conformity_score=METHOD, prefit=True)
        with warnings.catch_warnings():      # a small half may lack a rare class: expected
            warnings.filterwarnings("ignore", message=".*conformalization dataset has less")
            mapie.conformalize(np.asarray(model.predict_proba(x[known]), dtype=float),
                               labels[known])
        scores[known] = np.asarray(mapie.conformity_scores, dtype=float).ravel()
    return scores


class _Probabilities(ClassifierMixin, BaseEstimator):
    """A prefitted classifier whose input is another model's probability matrix.

    Why: LAC scores depend on the probabilities only, and MAPIE probes a prefitted estimator
    by predicting a row of numpy zeros of `n_features_in_` columns. Our models take frames
    with named columns (a threshold-tuned wrapper reports its raw feature count), so the
    probe fails on them; handing MAPIE the probabilities keeps its arithmetic and its checks.
    """

    def __init__(self, classes: Any = None) -> None:
        self.classes = classes

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.classes)

    @property
    def n_features_in_(self) -> int:
        return len(self.classes_)

    def fit(self, x: Any, y: Any) -> _Probabilities:
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=float)

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(x), axis=1)]


def calibrate(model: Any, x_cal: pd.DataFrame, y_cal: pd.Series, error_rate: float
              ) -> ConformalRule | None:
    """The LAC rule of a fitted model on calibration rows (None: too few rows for the rate)."""
    threshold = conformal_quantile(lac_scores(model, x_cal, y_cal, error_rate), error_rate)
    if threshold is None:
        return None
    return ConformalRule(error_rate=float(error_rate), threshold=threshold,
                         n_calibration=len(y_cal))


def min_calibration_rows(error_rate: float) -> int:
    """Fewest calibration rows for which the order statistic exists at this error rate."""
    return math.ceil(1 / error_rate - 1)


def held_out_figures(rule: ConformalRule | None, proba: np.ndarray, y: pd.Series,
                     classes: list[str], old_threshold: float) -> dict[str, Any]:
    """What the report states on evaluation rows: coverage (with its 95% Clopper-Pearson
    interval) and set sizes of the conformal rule, and the old threshold's figures."""
    from scipy.stats import binomtest

    proba = np.asarray(proba, dtype=float)
    truth = pd.Categorical(y.astype(str), categories=classes).codes
    n = len(truth)
    top = proba.argmax(axis=1)
    correct = top == truth
    low = proba.max(axis=1) < old_threshold
    figures: dict[str, Any] = {
        "n_rows": n,
        "old_threshold": old_threshold,
        "old_share_flagged": float(low.mean()) if n else None,
        "old_error_unflagged": float(1 - correct[~low].mean()) if (~low).any() else None,
    }
    if rule is None or n == 0:
        return figures
    sets = rule.sets(proba)
    size = sets.sum(axis=1)
    covered = np.zeros(n, dtype=bool)
    known = truth >= 0
    covered[known] = sets[np.flatnonzero(known), truth[known]]
    hits = int(covered.sum())
    interval = binomtest(hits, n, 1 - rule.error_rate).proportion_ci(0.95)
    single = size == 1
    figures.update(
        error_rate=rule.error_rate, target_coverage=1 - rule.error_rate,
        coverage=hits / n, coverage_low=float(interval.low), coverage_high=float(interval.high),
        mean_set_size=float(size.mean()), share_flagged=float((~single).mean()),
        share_empty=float((size == 0).mean()),
        error_unflagged=float(1 - correct[single].mean()) if single.any() else None,
        # coverage is promised on average over rows, not per class: show each class's
        per_class={name: {"rows": int((truth == k).sum()),
                          "coverage": float(covered[truth == k].mean())}
                   for k, name in enumerate(classes) if (truth == k).any()})
    return figures


@dataclass(frozen=True)
class ConformalReview:
    """The conformal outcome of a training run: the served model's rule and report figures."""

    served: ConformalRule | None
    figures: dict[str, Any]
    note: str
    n_left_out: int = 0         # calibration rows the served refit was fitted without

    def card_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"threshold": None, "note": self.note, "held_out": self.figures,
                                 "calibration_rows": self.n_left_out}
        if self.served is not None:
            entry.update(self.served.to_card())
        return entry


def review_run(judged: Any, served: Any, x_test: pd.DataFrame, y_test: pd.Series,
               classes: list[str], error_rate: float, old_threshold: float) -> ConformalReview:
    """Calibrate the served model (fitted without the calibration half) and measure the
    judged training-split fit, calibrated the same way, on the other half of held-out rows."""
    x_cal, y_cal, x_eval, y_eval = calibration_part(x_test, y_test)
    note = (f"LAC split-conformal sets at error rate {error_rate:g}, calibrated on {len(y_cal)}"
            f" of the {len(y_test)} held-out rows (a stratified half) that the served model "
            f"did not train on; the figures below are those of the training-split fit "
            f"(the one the gate judges), calibrated on the same half and measured on the "
            f"other {len(y_eval)} held-out rows")
    judged_rule = calibrate(judged, x_cal, y_cal, error_rate)
    served_rule = calibrate(served, x_cal, y_cal, error_rate)
    if served_rule is None:
        note = (f"no conformal calibration: {len(y_cal)} calibration rows are fewer than the "
                f"{min_calibration_rows(error_rate)} error rate {error_rate:g} needs; the "
                f"confidence threshold {old_threshold:g} stays the review rule")
    proba = aligned_probabilities(judged, x_eval, classes)
    return ConformalReview(served_rule, held_out_figures(
        judged_rule, proba, y_eval, classes, old_threshold), note,
        len(y_cal) if served_rule is not None else 0)


def aligned_probabilities(model: Any, x: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """predict_proba in the order of `classes` (a class the model never saw: 0)."""
    raw = np.asarray(model.predict_proba(x), dtype=float)
    out = np.zeros((len(x), len(classes)))
    position = {name: i for i, name in enumerate(classes)}
    for j, name in enumerate(np.asarray(model.classes_).astype(str)):
        if name in position:
            out[:, position[name]] = raw[:, j]
    return out
