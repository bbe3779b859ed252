"""Imbalance techniques compared inside a run: each algorithm under three strategies, as
candidates of the same leaderboard.

Why it exists. On imbalanced data one strategy per algorithm (weights from the cost matrix,
say) leaves the question a reader of the medical report asks first unanswered: would
resampling or tuned per-class thresholds have found more of the rare classes? It can only be
answered on the same rows, so the default run answers it: each branch, after tuning its
algorithm under the planned strategy, fits the same algorithm with the same parameters under
the other compared strategies (class weights, or random oversampling where the algorithm
takes no weights; SMOTE inside the pipeline; thresholds tuned for macro F1), cross-validated
on the selection folds and scored on the held-out rows like any candidate. Selection then
ranks them all, and the report's table is the run's own figures, per class and overall.
Tuning is not repeated per strategy: the alternatives cost a few fits per branch, not a study.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from models.data.spec import DatasetSpec
from models.learning.catalogue import get_algorithm
from models.learning.fit import BASELINES, CandidateResult, Split, fit_candidate

COMPARED = ("weights", "smote", "threshold_f1")


def strategies_for(spec: DatasetSpec, algorithm: str, own: str) -> list[str]:
    """The run's own strategy first, then the compared ones it is not (class weights where
    the algorithm takes them, from the cost matrix when the spec has one; random
    oversampling where it does not)."""
    takes_weights = get_algorithm(algorithm, spec.kind).class_weight
    weights = ("cost_weight" if spec.cost_matrix is not None else "class_weight"
               ) if takes_weights else "random_oversample"
    named = [weights if s == "weights" else s for s in COMPARED]
    return list(dict.fromkeys([own, *named]))


def fit_alternatives(spec: DatasetSpec, split: Split, result: CandidateResult, *,
                     cv_folds: int, seed: int, make: Any = None
                     ) -> tuple[list[CandidateResult], list[dict[str, str]]]:
    """The other strategies of `result`'s algorithm with its parameters, as candidates, and
    the ones that could not fit (SMOTE with fewer rows of a class than it has neighbours),
    each as {algorithm, error}. `make(params, strategy)` builds the pipeline (the branch's own
    builder: its text features and thread settings); None uses the catalogue's."""
    if result.algorithm in BASELINES:
        return [], []
    params = dict(result.params or {})
    fitted, failed = [], []
    for strategy in strategies_for(spec, result.algorithm, result.imbalance)[1:]:
        try:
            fitted.append(fit_candidate(
                spec, split, result.algorithm, params=params, imbalance=strategy,
                cv_folds=cv_folds, seed=seed,
                model=None if make is None else make(params, strategy)))
        except (ValueError, RuntimeError) as error:
            failed.append({"algorithm": f"{result.algorithm}+{strategy}",
                           "error": str(error).strip().splitlines()[-1][:200]})
    return fitted, failed


def imbalance_table(spec: DatasetSpec, results: Sequence[CandidateResult],
                    leaderboard: Sequence[Mapping[str, Any]] = ()) -> pd.DataFrame | None:
    """The run's candidates by algorithm and strategy: leaderboard rank, overall and
    per-class held-out figures; None when no algorithm was tried under two strategies."""
    ranks = {row.get("name"): row.get("rank") for row in leaderboard}
    rows = []
    for result in results:
        if result.algorithm in BASELINES:
            continue
        row: dict[str, Any] = {"algorithm": result.algorithm, "imbalance": result.imbalance,
                               "rank": ranks.get(result.name),
                               "accuracy": round(result.metrics["accuracy"], 3),
                               "f1_macro": round(result.metrics["f1_macro"], 3)}
        for name in spec.classes:
            scores = result.metrics["per_class"].get(name, {})
            row[f"recall {name}"] = round(float(scores.get("recall", 0.0)), 3)
            row[f"f1 {name}"] = round(float(scores.get("f1", 0.0)), 3)
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty or table.groupby("algorithm")["imbalance"].nunique().max() < 2:
        return None
    return table.sort_values(["algorithm", "f1_macro"], ascending=[True, False],
                             ignore_index=True)
