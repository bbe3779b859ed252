"""The platform's winner against plain scikit-learn models on the same split (issue 18).

For scikit-learn's bundled sets (iris, wine, breast_cancer, digits), three small generated
imbalanced tables and the built-in tabular datasets: a stratified 80/20 split; the 80 % goes
through the training flow's plain functions (plan, tune and fit each algorithm, select
performance first, refit the winner on every row) and the winner predicts the 20 %. Plain
logistic regression, random forest and histogram gradient boosting (scikit-learn defaults, the
platform's preprocessing) are fitted on the same 80 % in the same run. Goal: platform macro F1
at or above the best plain model minus 0.005 on every set. Figures (and each training's wall
time) are printed and written to benchmarks/results/quality.json.

This runs the plain functions, not `overnight ingest/train/predict`: the same code the flow's
steps call, without Metaflow's per-step process start-up.

    .venv/bin/python benchmarks/bench_quality.py [--trials 10] [--sets iris wine]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets as sk_datasets
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from models.data.ingest import infer_spec
from models.data.spec import DatasetSpec
from models.learning.fit import refit_full, split_data, summarise_candidates
from models.learning.preprocessing import build_preprocessor
from models.training.steps import plan_algorithms, train_branch, window_shares

RESULTS = Path(__file__).parent / "results" / "quality.json"
GOAL_MARGIN = 0.005
PLAIN = {
    "logistic_regression": lambda: LogisticRegression(max_iter=1000),
    "random_forest": lambda: RandomForestClassifier(random_state=0),
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(random_state=0),
}


def bundled(loader: Callable[..., object]) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        data = loader(as_frame=True)
        frame = data.frame.rename(columns=lambda c: str(c).replace(" ", "_"))  # type: ignore
        names = list(data.target_names)  # type: ignore[attr-defined]
        frame["label"] = [str(names[i]) for i in data.target]  # type: ignore[attr-defined]
        return frame.drop(columns=["target"])
    return load


def generated(rows: int, classes: int, seed: int) -> Callable[[], pd.DataFrame]:
    """A small imbalanced table: skewed class weights, label noise, a few useless columns."""
    def load() -> pd.DataFrame:
        weights = np.geomspace(1.0, 0.12, classes)
        x, y = sk_datasets.make_classification(
            n_samples=rows, n_features=10, n_informative=5, n_redundant=2, n_classes=classes,
            n_clusters_per_class=1, weights=list(weights / weights.sum()), flip_y=0.03,
            class_sep=1.0, random_state=seed)
        frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
        frame["label"] = [f"c{v}" for v in y]
        return frame
    return load


def builtin(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from models.data.datasets import BUILTIN
        from models.data.generators.base import STABLE

        entry = BUILTIN[name]
        frame = entry.generate(date(2026, 1, 1), entry.default_rows, 42, STABLE)
        return frame[[*entry.spec.feature_names, entry.spec.target]].rename(
            columns={entry.spec.target: "label"})
    return load


SETS: dict[str, Callable[[], pd.DataFrame]] = {
    "iris": bundled(sk_datasets.load_iris), "wine": bundled(sk_datasets.load_wine),
    "breast_cancer": bundled(sk_datasets.load_breast_cancer),
    "digits": bundled(sk_datasets.load_digits),
    "gen_150x4": generated(150, 4, 1), "gen_250x5": generated(250, 5, 2),
    "gen_400x6": generated(400, 6, 3),
    "customer": builtin("customer"), "medical": builtin("medical"),
}


def macro_f1(y_true: pd.Series, y_pred: object) -> float:
    return float(f1_score(y_true, np.asarray(y_pred).astype(str), average="macro",
                          zero_division=0))


def platform_winner(spec: DatasetSpec, train: pd.DataFrame, trials: int, budget: float
                    ) -> tuple[object, dict[str, object]]:
    """What the flow does on the train part: plan, tune and fit each branch, select, refit."""
    split = split_data(train, spec, test_size=0.25, seed=42)
    plan = plan_algorithms(spec, len(train), shares=window_shares(train, spec))
    results, failures = [], {}
    for name in plan["algorithms"]:
        try:                                  # the flow's @catch: a failed branch is skipped
            results.append(train_branch(spec, split, name, imbalance=plan["imbalance"],
                                        trials=trials, time_budget=budget, cv_folds=3,
                                        seed=42)[0])
        except Exception as error:
            failures[name] = f"{type(error).__name__}: {str(error).splitlines()[-1]}"
    summary = summarise_candidates(results, split, cv_folds=3)
    assert summary.winner is not None
    refit = refit_full(split, summary.winner)
    board = [{k: row.get(k) for k in ("rank", "name", "tied", "p_vs_best", "selection_f1",
                                      "score")} for row in summary.leaderboard]
    return refit.model, {"winner": summary.winner.name, "leaderboard": board,
                         "selection": summary.winner.cv_scheme, "failures": failures}


def run_set(name: str, trials: int, budget: float) -> dict[str, object]:
    frame = SETS[name]()
    spec = infer_spec(frame, name, "label")
    train, test = train_test_split(frame, test_size=0.2, stratify=frame["label"],
                                   random_state=0)
    x_test, y_test = test[spec.feature_names], test["label"].astype(str)
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        model, info = platform_winner(spec, train, trials, budget)
    out: dict[str, object] = {
        "set": name, "rows": len(frame), "classes": len(spec.classes),
        "smallest_class_share": round(min(window_shares(frame, spec).values()), 3),
        "platform_f1_macro": macro_f1(y_test, model.predict(x_test)),  # type: ignore
        "platform_seconds": round(time.perf_counter() - started, 1), **info}
    plain = {}
    for algo, make in PLAIN.items():
        started = time.perf_counter()
        with threadpool_limits(limits=1):
            pipe = Pipeline([("features", build_preprocessor(spec)), ("model", make())])
            pipe.fit(train[spec.feature_names], train["label"].astype(str))
        plain[algo] = {"f1_macro": macro_f1(y_test, pipe.predict(x_test)),
                       "seconds": round(time.perf_counter() - started, 2)}
    best = max(v["f1_macro"] for v in plain.values())
    out.update(plain=plain, best_plain_f1_macro=best,
               meets_goal=bool(out["platform_f1_macro"] >= best - GOAL_MARGIN))  # type: ignore
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--time-budget", type=float, default=30.0)
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    args = parser.parse_args()
    rows = []
    for name in args.sets:
        row = run_set(name, args.trials, args.time_budget)
        rows.append(row)
        print(f"{name:14s} platform {row['platform_f1_macro']:.3f} ({row['winner']}, "
              f"{row['platform_seconds']} s)  best plain {row['best_plain_f1_macro']:.3f}  "
              f"{'ok' if row['meets_goal'] else 'BELOW GOAL'}", flush=True)
        RESULTS.write_text(json.dumps({
            "host": platform.node(), "python": platform.python_version(),
            "trials": args.trials, "time_budget": args.time_budget, "sets": rows},
            indent=2, default=str))


if __name__ == "__main__":
    main()
