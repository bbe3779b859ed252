"""Fit and predict time and macro F1 of each ensemble against its best member, per dataset.

For each dataset (customer, medical: tabular; news: text) the default members of the
ensembles (`models.learning.ensembles.base.DEFAULT_MEMBERS`) and the four ensembles
(stacking, dynamic selection, optimised voting, blending) are fitted through the catalogue as
the training flow would (same imbalance choice per algorithm, no outer cross-validation), on
one split, each with one thread. Fit and predict seconds (predict = `predict_proba` and
`predict` of the whole held-out 20 %) are CPU seconds of this process, which another job on a
shared machine barely changes (wall seconds are in the JSON too; they
can be several times larger under contention). Also reported: held-out macro F1, the best
member by held-out macro F1, the ensemble's F1 gain and time ratios against it, and
McNemar's p-value of ensemble vs best member on the held-out rows.
Figures are printed and written to benchmarks/results/ensembles.json.

    .venv/bin/python benchmarks/bench_ensembles.py [--rows 3000] [--datasets customer news]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path
from typing import Any

# imported before `threadpool_limits` is entered: it only limits the native thread pools
# (OpenMP, BLAS) that are already loaded when it starts
from sklearn.metrics import f1_score
from threadpoolctl import threadpool_limits

from models.data.datasets import BUILTIN
from models.data.generators.base import STABLE
from models.evaluation.statistics import mcnemar_test
from models.learning.ensembles.base import DEFAULT_MEMBERS
from models.learning.ensembles.diversity import cost_against_best
from models.learning.fit import make_model, split_data
from models.training.steps import plan_algorithms

RESULTS = Path(__file__).parent / "results" / "ensembles.json"
ENSEMBLES = ("stacking", "dynamic_selection", "voting_optimised", "blending")


def _timed(call: Any) -> tuple[Any, float, float]:
    """`call()`, its wall seconds and its CPU seconds (this process, all its threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = call()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def bench_dataset(dataset: str, rows: int) -> list[dict[str, Any]]:
    """Every member and ensemble of one dataset, fitted on one shared split."""
    spec = BUILTIN[dataset].spec
    frame = BUILTIN[dataset].generate(date(2026, 1, 1), int(rows / 0.8), 42, STABLE)
    split = split_data(frame, spec, test_size=0.2, seed=0)
    members = DEFAULT_MEMBERS[spec.kind]
    plan = plan_algorithms(spec, len(frame), ",".join((*members, *ENSEMBLES)))
    measured: dict[str, dict[str, Any]] = {}
    for name in plan["algorithms"]:
        model = make_model(spec, name, imbalance=plan["imbalance"][name], seed=0)
        _, fit_wall, fit_cpu = _timed(lambda m=model: m.fit(split.x_train, split.y_train))
        predicted, predict_wall, predict_cpu = _timed(lambda m=model: (
            m.predict_proba(split.x_test), m.predict(split.x_test))[1])
        measured[name] = {
            "dataset": dataset, "model": name, "rows": len(split.x_train),
            "imbalance": plan["imbalance"][name],
            "role": "ensemble" if name in ENSEMBLES else "member",
            "fit_seconds": fit_cpu, "predict_seconds": predict_cpu,
            "fit_wall_seconds": fit_wall, "predict_wall_seconds": predict_wall,
            "f1_macro": float(f1_score(split.y_test, predicted, average="macro")),
            "predicted": predicted}
    for name in ENSEMBLES:
        row = measured[name]
        row.update(cost_against_best(row, {m: measured[m] for m in members}))
        test = mcnemar_test(split.y_test, row["predicted"],
                            measured[row["best_member"]]["predicted"])
        row.update(mcnemar_p=test["p_value"], significantly_better=test["better"] == "a")
    return [{k: v for k, v in row.items() if k != "predicted"} for row in measured.values()]


def _line(row: dict[str, Any]) -> str:
    text = (f"{row['dataset']:<9}{row['model']:<20}{row['rows']:>6}{row['fit_seconds']:>8.2f}"
            f"{row['predict_seconds']:>9.3f}{row['f1_macro']:>7.3f}")
    if row["role"] == "ensemble":
        text += (f"  {row['best_member']:<20}{row['f1_gain']:>+7.3f}{row['fit_ratio']:>7.1f}x"
                 f"{row['predict_ratio']:>7.1f}x{row['mcnemar_p']:>8.3f}")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000, help="training rows per dataset")
    parser.add_argument("--datasets", nargs="+", default=["customer", "medical", "news"])
    args = parser.parse_args()
    print(f"{'dataset':<9}{'model':<20}{'rows':>6}{'fit cpu':>8}{'pred cpu':>9}{'F1':>7}  "
          f"{'best member':<20}{'dF1':>7}{'fit':>8}{'pred':>8}{'McN p':>8}")
    results = []
    with threadpool_limits(limits=1):
        for dataset in args.datasets:
            for row in bench_dataset(dataset, args.rows):
                results.append(row)
                print(_line(row))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "threads": 1, "seconds": "cpu",
               "python": platform.python_version()}
    RESULTS.write_text(json.dumps({"machine": machine,
                                   "rows": args.rows, "results": results}, indent=2))
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
