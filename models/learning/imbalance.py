"""Class-imbalance handling, selectable per run: weights, resampling, thresholds, costs.

- `class_weight`: balanced class weights in the classifier's loss.
- `cost_weight`: class weights proportional to how costly it is to miss each class (from the
  spec's cost matrix).
- `smote`, `smote_tomek`, `random_oversample`, `random_undersample`: imbalanced-learn samplers
  placed inside an imblearn `Pipeline` after preprocessing, so they only ever resample the data
  a pipeline is fitted on, never a validation fold.
- `threshold_f1`, `threshold_recall`: per-class decision weights tuned on out-of-fold
  probabilities of the training data (macro F1, or macro F1 subject to a recall target for the
  rare classes) by `ThresholdTunedClassifier`.
- `cost_sensitive`: the decision with the least expected cost under the cost matrix
  (`CostSensitiveClassifier`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.utils import Tags, get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from models.data.spec import DatasetSpec
from warehouse.errors import OvernightError


def _smote(seed: int) -> Any:
    from imblearn.over_sampling import SMOTE

    return SMOTE(k_neighbors=5, random_state=seed)


def _smote_tomek(seed: int) -> Any:
    from imblearn.combine import SMOTETomek

    return SMOTETomek(smote=_smote(seed), random_state=seed)


def _random_oversample(seed: int) -> Any:
    from imblearn.over_sampling import RandomOverSampler

    return RandomOverSampler(random_state=seed)


def _random_undersample(seed: int) -> Any:
    from imblearn.under_sampling import RandomUnderSampler

    return RandomUnderSampler(random_state=seed)


# imbalanced-learn is imported by the strategies that resample, not with this module: the
# catalogue imports it in every training task and serving worker, and imbalanced-learn's
# import (its scikit-learn compatibility layer imports pytest) costs about 0.2 s of each
# fresh process.
SAMPLERS = {"smote": _smote, "smote_tomek": _smote_tomek,
            "random_oversample": _random_oversample, "random_undersample": _random_undersample}
IMBALANCE_STRATEGIES = ("none", "class_weight", "cost_weight", *SAMPLERS, "threshold_f1",
                        "threshold_recall", "cost_sensitive")
RARE_SHARE = 0.15          # classes rarer than this get the recall target
RARE_RECALL_TARGET = 0.90


class ImbalanceError(OvernightError):
    pass


def cost_class_weights(spec: DatasetSpec) -> dict[str, float]:
    """Weight of each class = mean cost of misclassifying it, normalised to mean 1."""
    if spec.cost_matrix is None:
        raise ImbalanceError(f"dataset {spec.name!r} has no cost matrix for cost_weight")
    missed = np.asarray(spec.cost_matrix, dtype=float).sum(axis=1)
    missed = np.where(missed > 0, missed, missed[missed > 0].min(initial=1.0))
    weights = missed / missed.mean()
    return {c: float(w) for c, w in zip(spec.classes, weights, strict=True)}


def rare_recall_targets(spec: DatasetSpec) -> dict[str, float]:
    shares = spec.class_shares or {}
    return {c: RARE_RECALL_TARGET for c, s in shares.items() if s < RARE_SHARE}


def class_weight_for(strategy: str, spec: DatasetSpec) -> Any:
    """The class_weight argument a weighting strategy gives a classifier (None otherwise).

    Cost weights are keyed both by class name and by the class's sorted position, because
    some estimators (histogram boosting, calibrated SVM) encode labels before reading them.
    """
    if strategy == "class_weight":
        return "balanced"
    if strategy != "cost_weight":
        return None
    weight: dict[Any, float] = cost_class_weights(spec)
    return {**weight, **{i: weight[c] for i, c in enumerate(sorted(weight))}}


def apply_imbalance(strategy: str, preprocessor: BaseEstimator, classifier: BaseEstimator, *,
                    spec: DatasetSpec, seed: int) -> BaseEstimator:
    """Assemble preprocessing and classifier (already weighted) under one strategy."""
    if strategy in SAMPLERS:
        from imblearn.pipeline import Pipeline as ImbPipeline

        return ImbPipeline([("preprocess", preprocessor), ("resample", SAMPLERS[strategy](seed)),
                            ("classify", classifier)])
    pipeline = Pipeline([("preprocess", preprocessor), ("classify", classifier)])
    if strategy == "threshold_f1":
        return ThresholdTunedClassifier(pipeline, random_state=seed)
    if strategy == "threshold_recall":
        return ThresholdTunedClassifier(pipeline, recall_targets=rare_recall_targets(spec),
                                        random_state=seed)
    if strategy == "cost_sensitive":
        if spec.cost_matrix is None:
            raise ImbalanceError(f"dataset {spec.name!r} has no cost matrix for cost_sensitive")
        return CostSensitiveClassifier(pipeline, cost_matrix=spec.cost_matrix,
                                       classes=spec.classes)
    return pipeline


def tune_class_weights(proba: np.ndarray, y: np.ndarray, *,
                       recall_targets: np.ndarray | None = None, rounds: int = 3) -> np.ndarray:
    """Per-class multipliers of the probabilities that maximise macro F1 of the argmax.

    With recall targets (one per class, NaN for none), shortfalls below a target are
    penalised heavily, so the weights first reach the targets and then maximise F1.
    Coordinate ascent over a log grid; deterministic.
    """
    k = proba.shape[1]
    grid = np.exp(np.linspace(-2.5, 2.5, 41))
    support = np.bincount(y, minlength=k).astype(float)

    def objective(w: np.ndarray) -> float:
        pred = np.argmax(proba * w, axis=1)
        hits = np.bincount(y[pred == y], minlength=k).astype(float)
        predicted = np.bincount(pred, minlength=k).astype(float)
        recall = np.divide(hits, support, out=np.zeros(k), where=support > 0)
        precision = np.divide(hits, predicted, out=np.zeros(k), where=predicted > 0)
        both = precision + recall
        f1 = np.divide(2 * precision * recall, both, out=np.zeros(k), where=both > 0)
        value = float(f1.mean())
        if recall_targets is not None:
            gap = np.nan_to_num(recall_targets - recall, nan=0.0).clip(min=0)
            value -= 10.0 * float(gap.sum())
        return value

    weights = np.ones(k)
    best = objective(weights)
    for _ in range(rounds):
        improved = False
        for j in range(k):
            for factor in grid:
                trial = weights.copy()
                trial[j] = factor
                score = objective(trial)
                if score > best + 1e-12:
                    best, weights, improved = score, trial, True
        if not improved:
            break
    return weights / weights.max()


class _DecisionRuleWrapper(ClassifierMixin, BaseEstimator):
    """What both decision-rule wrappers share: X goes to the wrapped `estimator_` unchanged,
    so they accept what it accepts and report its `n_features_in_` and `feature_names_in_`
    (properties, so artifacts pickled before they existed answer too)."""

    estimator: BaseEstimator
    estimator_: BaseEstimator

    @property
    def n_features_in_(self) -> int:
        return int(self.estimator_.n_features_in_)

    @property
    def feature_names_in_(self) -> np.ndarray:
        return np.asarray(self.estimator_.feature_names_in_)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags = get_tags(self.estimator).input_tags
        return tags


def classification_target(estimator: BaseEstimator, y: Any) -> np.ndarray:
    """y as a 1-d array of class labels, or a ValueError that says what is wrong with it."""
    if y is None:
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, "
                         "but the target y is None")
    y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    return y


class ThresholdTunedClassifier(_DecisionRuleWrapper):
    """A classifier whose per-class decision weights are tuned on out-of-fold probabilities.

    `predict_proba` returns the re-weighted, re-normalised probabilities, so its argmax is the
    tuned decision everywhere (serving, evaluation, review flags).
    """

    def __init__(self, estimator: BaseEstimator, recall_targets: dict[str, float] | None = None,
                 cv: int = 3, random_state: int = 0) -> None:
        self.estimator = estimator
        self.recall_targets = recall_targets
        self.cv = cv
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> ThresholdTunedClassifier:
        y = classification_target(self, y)
        self.classes_ = np.unique(y)
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        oof = cross_val_predict(clone(self.estimator), X, y, cv=folds, method="predict_proba")
        y_idx = np.searchsorted(self.classes_, y)
        targets = None
        if self.recall_targets:
            targets = np.array([self.recall_targets.get(str(c), np.nan) for c in self.classes_])
        self.weights_ = tune_class_weights(oof, y_idx, recall_targets=targets)
        self.estimator_ = clone(self.estimator).fit(X, y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        weighted = self.estimator_.predict_proba(X) * self.weights_
        return weighted / weighted.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class CostSensitiveClassifier(_DecisionRuleWrapper):
    """Predicts the class with the least expected cost; probabilities stay the model's own.

    `cost_matrix[i][j]` is the cost of predicting class j for a row of class i, rows and
    columns in the order of `classes` (or of the sorted classes when `classes` is None);
    None means every mistake costs 1 (the 0-1 cost), which decides like the argmax.
    """

    def __init__(self, estimator: BaseEstimator, cost_matrix: Any = None,
                 classes: Any = None) -> None:
        self.estimator = estimator
        self.cost_matrix = cost_matrix
        self.classes = classes

    def fit(self, X: Any, y: Any) -> CostSensitiveClassifier:
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.estimator_.classes_
        if self.cost_matrix is None:
            self.cost_ = 1.0 - np.eye(len(self.classes_))
            return self
        cost = np.asarray(self.cost_matrix, dtype=float)
        order = list(self.classes) if self.classes is not None else list(self.classes_)
        index = [order.index(c) for c in self.classes_]
        self.cost_ = cost[np.ix_(index, index)]     # rows/cols in the order of classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        expected_cost = self.predict_proba(X) @ self.cost_
        return self.classes_[np.argmin(expected_cost, axis=1)]
