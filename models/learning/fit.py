"""Fitting and judging candidates: the plain functions the training flow's steps call.

`split_data` makes the held-out split, `fit_candidate` fits one algorithm under one imbalance
strategy and evaluates it (metrics, cross-validated scores, timings, size), and
`compare_candidates` runs a grid of them and ranks the results. No orchestrator is needed to
call any of it; Metaflow branches call `fit_candidate` one algorithm at a time.

Selection is performance first: `summarise_candidates` keeps only the candidates whose
cross-validated macro F1 is not significantly below the best's (corrected resampled t-test
on the same folds) nor more than `TIE_MARGIN` below its mean, and lets the multi-criteria
score rank those alone. On small windows (under `SMALL_WINDOW_ROWS` labelled rows) the folds
are repeated stratified folds over the whole window, since one 25 % split of a few hundred
rows is too noisy to choose by. `refit_full` then refits the winner on every labelled row:
that is the artifact served, while the fit on the training split keeps the honest held-out
figures the reports and the gate use.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import (
    RepeatedStratifiedKFold,
    StratifiedKFold,
    cross_val_score,
    train_test_split,
)
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from models.data.spec import DatasetSpec, feature_frame
from models.evaluation.metrics import evaluate
from models.evaluation.statistics import (
    corrected_resampled_ttest,
    mcnemar_test,
    performance_ties,
    rank_candidates,
)
from models.learning.catalogue import build_model, build_text_model, get_algorithm

# Under this many labelled rows the held-out quarter is 750 rows or fewer: its macro F1 has a
# standard error of about 0.015-0.05 (more with rare classes), as large as the gaps selection
# must see, so candidates are compared on repeated stratified folds over the whole window.
# Measured on this 2-core host at 2900 rows: 15 folds cost 3-20 s per candidate (gradient
# boosting on five classes ~340 s), so windows of 1000+ rows get 2 repeats, smaller ones 3.
SMALL_WINDOW_ROWS = 3000
SELECTION_FOLDS = 5
SELECTION_REPEATS = 3
LARGER_SMALL_WINDOW_ROWS = 1000
LARGER_SMALL_WINDOW_REPEATS = 2
TIE_ALPHA = 0.05
# A candidate more than this below the best's mean selection macro F1 is not tied either, even
# when the t-test cannot call the gap significant: on a few hundred rows the corrected test's
# variance term (1/(folds x repeats) + n_test/n_train) leaves gaps of 0.05-0.10 "tied", and the
# multi-criteria score then traded that much F1 for speed (issue 18: logistic regression at
# 0.56 chosen over a random forest at 0.68 on a 250-row table). 0.01 is a gap a user would
# trade for a faster, simpler model; larger ones are not.
TIE_MARGIN = 0.01


@dataclass(frozen=True)
class Split:
    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series

    @property
    def n_rows(self) -> int:
        return len(self.x_train) + len(self.x_test)

    def all_rows(self) -> tuple[pd.DataFrame, pd.Series]:
        """Every labelled row of the window (training then held-out), for CV and refit."""
        return (pd.concat([self.x_train, self.x_test], ignore_index=True),
                pd.concat([self.y_train, self.y_test], ignore_index=True))


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
    # how cv_scores were made: rows they cover, folds, repeats (the t-test needs fold sizes)
    cv_scheme: dict[str, Any] = field(default_factory=dict)

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


def selection_scheme(split: Split, cv_folds: int) -> dict[str, Any]:
    """How candidates are cross-validated for selection on this split's window.

    Small windows: repeated stratified folds over every labelled row (the folds shrink when
    the rarest class has fewer rows than folds). Otherwise `cv_folds` folds of the training
    split, as before. `rows` is the number of rows the folds partition; `cv_folds` under 2
    turns cross-validation off everywhere (selection then compares held-out F1).
    """
    if cv_folds < 2:
        return {"name": "none", "rows": len(split.x_train), "folds": 0, "repeats": 1}
    _, y = split.all_rows()
    rarest = int(y.value_counts().min())
    if split.n_rows < SMALL_WINDOW_ROWS and min(SELECTION_FOLDS, rarest) >= 2:
        return {"name": "repeated stratified CV over the whole window",
                "rows": split.n_rows, "folds": min(SELECTION_FOLDS, rarest),
                "repeats": SELECTION_REPEATS if split.n_rows < LARGER_SMALL_WINDOW_ROWS
                else LARGER_SMALL_WINDOW_REPEATS}
    return {"name": "stratified CV on the training split", "rows": len(split.x_train),
            "folds": cv_folds, "repeats": 1}


def scheme_scores(model: Any, split: Split, scheme: dict[str, Any], *, seed: int,
                  scoring: str = "f1_macro") -> list[float]:
    """Macro F1 of fresh clones on the scheme's folds (the same folds for every candidate)."""
    if scheme["folds"] < 2:
        return []
    if scheme["repeats"] == 1 and scheme["rows"] == len(split.x_train):
        return cross_validated(model, split.x_train, split.y_train, folds=scheme["folds"],
                               seed=seed, scoring=scoring)
    x, y = split.all_rows()
    splitter = RepeatedStratifiedKFold(n_splits=scheme["folds"], n_repeats=scheme["repeats"],
                                       random_state=seed)
    return [float(s) for s in cross_val_score(clone(model), x, y, cv=splitter,
                                              scoring=scoring)]


def constant_feature(x: pd.DataFrame) -> np.ndarray:
    """One constant column per row: all a baseline that ignores its inputs needs."""
    return np.zeros((len(x), 1))


def make_model(spec: DatasetSpec, algorithm: str, params: dict[str, Any] | None = None, *,
               imbalance: str = "none", seed: int = 0, text_stats: bool = False) -> Any:
    """An unfitted pipeline for any spec: text specs get the text vectorisers.

    The dummy baseline ignores its inputs, so it gets no feature engineering at all (on text,
    vectorising for a model that never looks would be most of a training run's time).
    """
    if algorithm == "dummy":
        return build_model(spec, algorithm, params, imbalance=imbalance, seed=seed,
                           preprocessor=FunctionTransformer(constant_feature))
    if spec.kind == "text":
        return build_text_model(spec, algorithm, params, imbalance=imbalance, seed=seed,
                                text_stats=text_stats)
    return build_model(spec, algorithm, params, imbalance=imbalance, seed=seed)


def fit_candidate(spec: DatasetSpec, split: Split, algorithm: str, *,
                  params: dict[str, Any] | None = None, imbalance: str = "none",
                  cv_folds: int = 3, seed: int = 0, model: Any = None,
                  cv_scores: list[float] | None = None) -> CandidateResult:
    """Fit one candidate on the training split, evaluate it on the held-out split.

    Its cv_scores follow `selection_scheme`: on a small window, repeated folds over all rows.
    A caller that already scored this model on exactly the scheme's folds (tuning on the
    training split's folds) passes them as `cv_scores` instead of fitting them again.
    """
    model = model if model is not None else make_model(spec, algorithm, params,
                                                       imbalance=imbalance, seed=seed)
    scheme = selection_scheme(split, cv_folds)
    cv_scores = (list(cv_scores) if cv_scores is not None
                 else scheme_scores(model, split, scheme, seed=seed))
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
        interpretability=get_algorithm(algorithm).interpretability, model=model,
        cv_scheme=scheme)


def _aligned_proba(model: Any, x: pd.DataFrame, spec: DatasetSpec) -> np.ndarray:
    """predict_proba with columns in the spec's class order (classes absent in training = 0)."""
    proba = model.predict_proba(x)
    fitted = [str(c) for c in model.classes_]
    out = np.zeros((len(x), len(spec.classes)))
    for j, name in enumerate(fitted):
        out[:, spec.classes.index(name)] = proba[:, j]
    return out


def selection_performance(result: CandidateResult) -> float:
    """What selection compares: mean cross-validated macro F1, else held-out macro F1."""
    if result.cv_scores:
        return float(np.mean(result.cv_scores))
    return float(result.metrics["f1_macro"])


def fold_sizes(result: CandidateResult) -> tuple[int, int]:
    """One selection fold's (training, test) row counts, for the corrected t-test."""
    scheme = result.cv_scheme or {}
    rows = int(scheme.get("rows") or 0)
    folds = max(int(scheme.get("folds") or len(result.cv_scores) or 2), 2)
    n_test = max(rows // folds, 1)
    return max(rows - n_test, 1), n_test


def tie_group(results: list[CandidateResult], *, alpha: float = TIE_ALPHA,
              margin: float = TIE_MARGIN) -> dict[str, dict[str, Any]]:
    """Per candidate name: its selection mean, p-value against the best, tied or not.

    Tied means not significantly below the best (corrected t-test) and within `margin` of
    its mean: both, so neither a low-powered test nor a lucky fold lets a clearly weaker
    candidate into the group the multi-criteria score chooses from.
    """
    if not results:
        return {}
    lengths = {len(r.cv_scores) for r in results}
    if lengths == {0} or len(lengths) > 1:       # no shared folds: compare held-out F1 only
        scores = {r.name: [float(r.metrics["f1_macro"])] for r in results}
    else:
        scores = {r.name: list(r.cv_scores) for r in results}
    n_train, n_test = fold_sizes(results[0])
    ties = performance_ties(scores, n_train, n_test, alpha=alpha)
    best = max(info["mean"] for info in ties.values())
    for info in ties.values():
        info["tied"] = bool(info["tied"] and best - info["mean"] <= margin + 1e-12)
    return ties


def rank_results(results: list[CandidateResult], weights: dict[str, float] | None = None
                 ) -> list[dict[str, Any]]:
    """Multi-criteria ranking (performance = `selection_performance`), all results alike."""
    candidates = [{
        "name": r.name, "performance": selection_performance(r),
        "cv_std": float(np.std(r.cv_scores, ddof=1)) if len(r.cv_scores) > 1 else 0.0,
        "fit_seconds": r.fit_seconds, "predict_seconds": r.predict_seconds,
        "interpretability": r.interpretability, "memory_mb": r.size_mb,
    } for r in results]
    return rank_candidates(candidates, weights)


def select_candidates(results: list[CandidateResult], weights: dict[str, float] | None = None,
                      *, alpha: float = TIE_ALPHA) -> list[dict[str, Any]]:
    """Performance first: rank the tie group of the best by score, then the rest by F1.

    A candidate whose macro F1 is significantly below the best's (paired test on the same
    folds) is never in the tie group, so no speed, size or simplicity can make it win; only
    the tied candidates get a multi-criteria `score` (the others `None`), and they take
    ranks 1..k, the rest follow by mean macro F1. Each row says `tied` and `p_vs_best`.
    """
    ties = tie_group(results, alpha=alpha)
    tied = [r for r in results if ties[r.name]["tied"]]
    rest = sorted((r for r in results if not ties[r.name]["tied"]),
                  key=lambda r: (-ties[r.name]["mean"], r.name))
    rows = rank_results(tied, weights) + [{"name": r.name, "score": None} for r in rest]
    for rank, row in enumerate(rows, start=1):
        info = ties[row["name"]]
        row.update(rank=rank, tied=info["tied"], p_vs_best=info["p_value"],
                   selection_f1=info["mean"])
    return rows


def compare_candidates(spec: DatasetSpec, split: Split, grid: list[tuple[str, str]], *,
                       cv_folds: int = 3, seed: int = 0) -> tuple[list[CandidateResult],
                                                                  pd.DataFrame]:
    """Fit every (algorithm, imbalance) pair; return the results and a ranked table.

    Native thread pools get one thread, as in the flow's branches: on a busy small machine
    OpenMP's spinning threads made one histogram gradient boosting fit 30x slower (61 s vs 2 s).
    """
    with threadpool_limits(limits=1):
        results = [fit_candidate(spec, split, a, imbalance=i, cv_folds=cv_folds, seed=seed)
                   for a, i in grid]
    ranking = {row["name"]: row for row in select_candidates(results)}
    table = pd.DataFrame([{
        "candidate": r.name, "algorithm": r.algorithm, "imbalance": r.imbalance,
        "rank": ranking[r.name]["rank"], "tied": ranking[r.name]["tied"],
        "score": ranking[r.name]["score"],
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
    """Select the winner (`select_candidates`), test it against each other, advise on ensembles.

    Baselines are listed but never ranked (they would win on speed and size). Significance of
    the winner against each other: the corrected resampled t-test on the shared selection
    folds and McNemar's test on the shared held-out split. `cv_folds` is kept for callers; the
    fold sizes come from each result's `cv_scheme`.
    """
    if not results:
        return RunSummary([], None, [], "no candidate succeeded", [])
    by_name = {r.name: r for r in results}
    contenders = [r for r in results if r.algorithm not in BASELINES]
    ranking = select_candidates(contenders, weights) + [
        {"name": r.name, "rank": None, "score": None, "tied": None, "p_vs_best": None,
         "selection_f1": selection_performance(r)}
        for r in results if r.algorithm in BASELINES]
    leaderboard = [{
        **row, "algorithm": by_name[row["name"]].algorithm,
        "imbalance": by_name[row["name"]].imbalance,
        "accuracy": by_name[row["name"]].metrics["accuracy"],
        "f1_macro": by_name[row["name"]].metrics["f1_macro"],
        "fit_seconds": by_name[row["name"]].fit_seconds,
    } for row in ranking]
    if not contenders:
        return RunSummary(leaderboard, None, [], "only baselines succeeded", results)
    winner = by_name[leaderboard[0]["name"]]
    n_train, n_test = fold_sizes(winner)
    predictions = winner.model.predict(split.x_test)
    significance = []
    for other in results:
        if other is winner:
            continue
        row: dict[str, Any] = {"other": other.name, "ttest_p": None}
        if len(winner.cv_scores) > 1 and len(other.cv_scores) == len(winner.cv_scores):
            test = corrected_resampled_ttest(winner.cv_scores, other.cv_scores, n_train, n_test)
            row["ttest_p"] = test["p_value"]
        mcnemar = mcnemar_test(split.y_test, predictions, other.model.predict(split.x_test))
        row["mcnemar_p"] = mcnemar["p_value"]
        row["significant"] = bool(mcnemar["better"] == "a")
        significance.append(row)
    return RunSummary(leaderboard, winner, significance,
                      recommend_ensemble(winner, results, split), results)


@dataclass
class Refit:
    """The winner refitted on every labelled row (refit_full): the artifact that is served."""
    model: Any = field(repr=False)
    n_rows: int
    seconds: float


def refit_full(split: Split, winner: CandidateResult, *, n_jobs: int = 1,
               leave_out: pd.Index | None = None) -> Refit:
    """A fresh clone of the winner (same hyper-parameters) fitted on all labelled rows.

    The winner's own model was fitted on the training split only; its held-out figures stay
    the honest ones. This refit sees the held-out rows too, so nothing measured on them
    describes it; small windows would otherwise lose a quarter of their data for good.
    `leave_out` (index labels of held-out rows) keeps rows out of the refit: the conformal
    calibration half (models/evaluation/conformal.py), which the served model must not see.
    """
    if leave_out is None:
        x, y = split.all_rows()
    else:
        kept = split.x_test.index.difference(leave_out)
        x = pd.concat([split.x_train, split.x_test.loc[kept]], ignore_index=True)
        y = pd.concat([split.y_train, split.y_test.loc[kept]], ignore_index=True)
    started = time.perf_counter()
    with threadpool_limits(limits=max(n_jobs, 1)):
        model = clone(winner.model).fit(x, y)
    return Refit(model, len(x), time.perf_counter() - started)


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
