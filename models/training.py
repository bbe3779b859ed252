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
from sklearn.preprocessing import FunctionTransformer

from models.catalogue import build_model, get_algorithm
from models.evaluation import evaluate
from models.features import feature_frame
from models.spec import DatasetSpec
from models.statistics import corrected_resampled_ttest, mcnemar_test, rank_candidates


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


def constant_feature(x: pd.DataFrame) -> np.ndarray:
    """One constant column per row: all a baseline that ignores its inputs needs."""
    return np.zeros((len(x), 1))


def make_model(spec: DatasetSpec, algorithm: str, params: dict[str, Any] | None = None, *,
               imbalance: str = "none", seed: int = 0) -> Any:
    """An unfitted pipeline for any spec: text specs get the text vectorisers.

    The dummy baseline ignores its inputs, so it gets no feature engineering at all (on text,
    vectorising for a model that never looks would be most of a training run's time).
    """
    if algorithm == "dummy":
        return build_model(spec, algorithm, params, imbalance=imbalance, seed=seed,
                           preprocessor=FunctionTransformer(constant_feature))
    if spec.kind == "text":
        from models.text import build_text_model

        return build_text_model(spec, algorithm, params, imbalance=imbalance, seed=seed)
    return build_model(spec, algorithm, params, imbalance=imbalance, seed=seed)


def fit_candidate(spec: DatasetSpec, split: Split, algorithm: str, *,
                  params: dict[str, Any] | None = None, imbalance: str = "none",
                  cv_folds: int = 3, seed: int = 0, model: Any = None) -> CandidateResult:
    """Fit one candidate on the training split, evaluate it on the held-out split."""
    model = model if model is not None else make_model(spec, algorithm, params,
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


BASELINES = ("dummy",)


@dataclass
class RunSummary:
    leaderboard: list[dict[str, Any]]
    winner: CandidateResult | None
    significance: list[dict[str, Any]]
    recommendation: str
    results: list[CandidateResult] = field(default_factory=list)


def summarise_candidates(results: list[CandidateResult], split: Split, *, cv_folds: int,
                         weights: dict[str, float] | None = None) -> RunSummary:
    """Rank the candidates, test the winner against each other, recommend an ensemble or not.

    Baselines are ranked but never win. Significance: the corrected resampled t-test on the
    shared cross-validation folds and McNemar's test on the shared held-out split.
    """
    if not results:
        return RunSummary([], None, [], "no candidate succeeded", [])
    by_name = {r.name: r for r in results}
    contenders = [r for r in results if r.algorithm not in BASELINES]
    # baselines are measured and listed, but not ranked: they would win on speed and size
    ranking = rank_results(contenders, weights) + [
        {"name": r.name, "rank": None, "score": None} for r in results
        if r.algorithm in BASELINES]
    leaderboard = [{
        **row, "algorithm": by_name[row["name"]].algorithm,
        "imbalance": by_name[row["name"]].imbalance,
        "accuracy": by_name[row["name"]].metrics["accuracy"],
        "f1_macro": by_name[row["name"]].metrics["f1_macro"],
        "fit_seconds": by_name[row["name"]].fit_seconds,
    } for row in ranking]
    if not contenders:
        return RunSummary(leaderboard, None, [], "only baselines succeeded", results)
    eligible = [row for row in leaderboard if row["rank"] is not None]
    winner = by_name[eligible[0]["name"]]
    n = len(split.x_train)
    n_test_fold = n // max(cv_folds, 2)
    predictions = winner.model.predict(split.x_test)
    significance = []
    for other in results:
        if other is winner:
            continue
        row: dict[str, Any] = {"other": other.name, "ttest_p": None}
        if len(winner.cv_scores) > 1 and len(other.cv_scores) == len(winner.cv_scores):
            test = corrected_resampled_ttest(winner.cv_scores, other.cv_scores,
                                             n - n_test_fold, n_test_fold)
            row["ttest_p"] = test["p_value"]
        mcnemar = mcnemar_test(split.y_test, predictions, other.model.predict(split.x_test))
        row["mcnemar_p"] = mcnemar["p_value"]
        row["significant"] = bool(mcnemar["better"] == "a")
        significance.append(row)
    return RunSummary(leaderboard, winner, significance,
                      recommend_ensemble(winner, results, split), results)


def recommend_ensemble(winner: CandidateResult, results: list[CandidateResult],
                       split: Split, *, margin: float = 0.01,
                       min_disagreement: float = 0.05) -> str:
    """Recommend soft voting when close runners-up disagree with the winner often enough."""
    best = winner.metrics["f1_macro"]
    predictions = winner.model.predict(split.x_test)
    partners = []
    for other in results:
        if other is winner or other.algorithm in BASELINES:
            continue
        if best - other.metrics["f1_macro"] <= margin:
            disagreement = float(np.mean(other.model.predict(split.x_test) != predictions))
            if disagreement >= min_disagreement:
                partners.append(f"{other.name} ({disagreement:.0%} disagreement)")
    if not partners:
        return (f"none: no runner-up within {margin:.2f} macro F1 of {winner.name} disagrees "
                f"with it on {min_disagreement:.0%} of rows or more")
    return f"try soft voting of {winner.name} with " + ", ".join(partners)
