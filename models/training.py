"""Fitting and judging candidates: the plain functions the training flow's steps call.

`split_data` makes the held-out split, `fit_candidate` fits one algorithm under one imbalance
strategy and evaluates it (metrics, cross-validated scores, timings, size), and
`compare_candidates` runs a grid of them and ranks the results. No orchestrator is needed to
call any of it; Metaflow branches call `fit_candidate` one algorithm at a time.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split

from models.catalogue import build_model, get_algorithm
from models.evaluation import evaluate
from models.features import feature_frame
from models.spec import DatasetSpec
from models.statistics import rank_candidates


@dataclass(frozen=True)
class Split:
    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def split_data(frame: pd.DataFrame, spec: DatasetSpec, *, test_size: float = 0.25,
               seed: int = 0) -> Split:
    """Stratified held-out split of the labelled rows into raw feature frames and labels."""
    labelled = frame[frame[spec.target].notna()]
    x = feature_frame(labelled, spec).reset_index(drop=True)
    y = labelled[spec.target].astype(str).reset_index(drop=True)
    stratify = y if y.value_counts().min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, stratify=stratify, random_state=seed)
    return Split(x_train, x_test, y_train, y_test)


@dataclass
class CandidateResult:
    algorithm: str
    imbalance: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    cv_scores: list[float]
    fit_seconds: float
    predict_seconds: float
    size_mb: float
    interpretability: float
    model: Any = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """The JSON-friendly part (everything but the fitted model)."""
        data = asdict(self)
        data.pop("model")
        return data

    @property
    def name(self) -> str:
        return self.algorithm if self.imbalance == "none" else (
            f"{self.algorithm}+{self.imbalance}")


def cross_validated(model: Any, x: pd.DataFrame, y: pd.Series, *, folds: int, seed: int,
                    scoring: str = "f1_macro") -> list[float]:
    """Scores of a fresh clone on stratified folds (resampling stays inside each fit)."""
    if folds < 2:
        return []
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return [float(s) for s in cross_val_score(clone(model), x, y, cv=splitter, scoring=scoring)]


def fit_candidate(spec: DatasetSpec, split: Split, algorithm: str, *,
                  params: dict[str, Any] | None = None, imbalance: str = "none",
                  cv_folds: int = 3, seed: int = 0, model: Any = None) -> CandidateResult:
    """Fit one candidate on the training split, evaluate it on the held-out split."""
    model = model if model is not None else build_model(spec, algorithm, params,
                                                        imbalance=imbalance, seed=seed)
    cv_scores = cross_validated(model, split.x_train, split.y_train, folds=cv_folds, seed=seed)
    start = time.perf_counter()
    model.fit(split.x_train, split.y_train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    proba = _aligned_proba(model, split.x_test, spec)
    predicted = model.predict(split.x_test)
    predict_seconds = time.perf_counter() - start
    metrics = evaluate(split.y_test, proba, spec.classes, cost_matrix=spec.cost_matrix,
                       confidence_threshold=spec.confidence_threshold, y_pred=predicted)
    return CandidateResult(
        algorithm=algorithm, imbalance=imbalance, params=dict(params or {}), metrics=metrics,
        cv_scores=cv_scores, fit_seconds=fit_seconds, predict_seconds=predict_seconds,
        size_mb=len(pickle.dumps(model)) / 1e6,
        interpretability=get_algorithm(algorithm).interpretability, model=model)


def _aligned_proba(model: Any, x: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """predict_proba with columns in the spec's class order (classes absent in training = 0)."""
    proba = model.predict_proba(x)
    fitted = [str(c) for c in model.classes_]
    out = np.zeros((len(x), len(spec.classes)))
    for j, name in enumerate(fitted):
        out[:, spec.classes.index(name)] = proba[:, j]
    return out


def rank_results(results: list[CandidateResult], weights: dict[str, float] | None = None
                 ) -> list[dict[str, Any]]:
    """Multi-criteria ranking (performance = held-out macro F1)."""
    candidates = [{
        "name": r.name, "performance": r.metrics["f1_macro"],
        "cv_std": float(np.std(r.cv_scores, ddof=1)) if len(r.cv_scores) > 1 else 0.0,
        "fit_seconds": r.fit_seconds, "predict_seconds": r.predict_seconds,
        "interpretability": r.interpretability, "memory_mb": r.size_mb,
    } for r in results]
    return rank_candidates(candidates, weights)


def compare_candidates(spec: DatasetSpec, split: Split, grid: list[tuple[str, str]], *,
                       cv_folds: int = 3, seed: int = 0) -> tuple[list[CandidateResult],
                                                                  pd.DataFrame]:
    """Fit every (algorithm, imbalance) pair; return the results and a ranked table."""
    results = [fit_candidate(spec, split, a, imbalance=i, cv_folds=cv_folds, seed=seed)
               for a, i in grid]
    ranking = {row["name"]: row for row in rank_results(results)}
    table = pd.DataFrame([{
        "candidate": r.name, "algorithm": r.algorithm, "imbalance": r.imbalance,
        "rank": ranking[r.name]["rank"], "score": ranking[r.name]["score"],
        "accuracy": r.metrics["accuracy"], "f1_macro": r.metrics["f1_macro"],
        "min_class_f1": min(c["f1"] for c in r.metrics["per_class"].values()),
        "cv_mean": float(np.mean(r.cv_scores)) if r.cv_scores else None,
        "fit_seconds": r.fit_seconds,
    } for r in results]).sort_values("rank").reset_index(drop=True)
    return results, table
