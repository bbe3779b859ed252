"""How each algorithm of a run does under other imbalance techniques, on the run's own split.

Why it exists. A run on imbalanced data trains each algorithm with one strategy (weights from
the cost matrix, say). Whether resampling or tuned per-class thresholds would have found more
of the rare classes is the question a reader of the medical report asks first, and it can only
be answered on the same rows: each algorithm of the run is fitted again, with the parameters
its tuning chose, under at least two other strategies (weights or oversampling, SMOTE inside
the pipeline, thresholds tuned for macro F1), and scored on the run's held-out rows, per class
and overall. These fits are not candidates of the run (selection and the gate never see them):
they are evidence for the report, and cost a few fits per algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

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


def _row(spec: DatasetSpec, result: CandidateResult, own: bool) -> dict[str, Any]:
    metrics = result.metrics
    row: dict[str, Any] = {"algorithm": result.algorithm, "imbalance": result.imbalance,
                           "run's choice": own, "accuracy": round(metrics["accuracy"], 3),
                           "f1_macro": round(metrics["f1_macro"], 3)}
    for name in spec.classes:
        scores = metrics["per_class"].get(name, {})
        row[f"recall {name}"] = round(float(scores.get("recall", 0.0)), 3)
        row[f"f1 {name}"] = round(float(scores.get("f1", 0.0)), 3)
    return row


def compare_imbalance(spec: DatasetSpec, split: Split, results: Sequence[CandidateResult], *,
                      seed: int = 0) -> pd.DataFrame:
    """One row per (algorithm of the run, strategy): overall and per-class figures on the
    held-out rows. A strategy that cannot fit (SMOTE with fewer rows of a class than it has
    neighbours) is a row saying why, not a failed run."""
    rows = []
    with threadpool_limits(limits=1):
        for result in results:
            if result.algorithm in BASELINES:
                continue
            params = dict(getattr(result, "model_params", None) or result.params or {})
            for strategy in strategies_for(spec, result.algorithm, result.imbalance):
                if strategy == result.imbalance:
                    rows.append(_row(spec, result, own=True))
                    continue
                try:
                    other = fit_candidate(spec, split, result.algorithm, params=params,
                                          imbalance=strategy, cv_folds=0, seed=seed)
                except (ValueError, RuntimeError) as error:
                    rows.append({"algorithm": result.algorithm, "imbalance": strategy,
                                 "run's choice": False,
                                 "accuracy": None, "f1_macro": None,
                                 "note": f"could not fit: {str(error).splitlines()[0][:120]}"})
                    continue
                rows.append(_row(spec, other, own=False))
    return pd.DataFrame(rows)
