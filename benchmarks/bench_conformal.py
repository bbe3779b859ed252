"""What conformal review costs the scoring path, and what it buys (issue 22).

For the three built-in datasets: a logistic regression (naive Bayes for news) fitted on one
generated sample, calibrated (LAC, MAPIE) on another at each error rate, then
`score_frame` timed with and without the calibration on frames of 1, 100 and 10 000 rows
(best of 5), and the coverage, average set size and share flagged on a third sample, next to
the 0.6 threshold's share flagged. The machine is shared: times are indicative only.

    .venv/bin/python benchmarks/bench_conformal.py [--rows 1 100 10000] [--rates 0.05 0.1 0.2]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Any

from models.data.datasets import builtin
from models.data.generators.base import STABLE
from models.evaluation.conformal import aligned_probabilities, calibrate, held_out_figures
from models.learning.fit import make_model
from models.serving.scoring import score_frame

DAY = date(2026, 11, 16)
ALGORITHMS = {"customer": "logistic_regression", "medical": "logistic_regression",
              "news": "naive_bayes"}


def scored_sets(model: Any, frame: Any, spec: Any, rule: Any) -> Any:
    return score_frame(model, frame, spec, rule).set_names()


def best_of(fn: Callable[[], Any], repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 100, 10_000])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    args = parser.parse_args()
    for name, algorithm in ALGORITHMS.items():
        dataset = builtin(name)
        spec = dataset.spec
        fit = dataset.generate(DAY, 2000, 1, STABLE)
        model = make_model(spec, algorithm).fit(fit[spec.feature_names], fit[spec.target])
        cal = dataset.generate(DAY, 1000, 2, STABLE)
        test = dataset.generate(DAY, 1000, 3, STABLE)
        proba = aligned_probabilities(model, test[spec.feature_names], list(spec.classes))
        for rate in args.rates:
            rule = calibrate(model, cal[spec.feature_names], cal[spec.target], rate)
            f = held_out_figures(rule, proba, test[spec.target], list(spec.classes), 0.6)
            print(f"{name} rate {rate:g}: coverage {f.get('coverage', float('nan')):.3f}, "
                  f"mean set {f.get('mean_set_size', float('nan')):.2f}, flagged "
                  f"{f.get('share_flagged', float('nan')):.3f} (0.6 threshold flagged "
                  f"{f['old_share_flagged']:.3f})")
        rule = calibrate(model, cal[spec.feature_names], cal[spec.target], 0.1)
        for rows in args.rows:
            frame = dataset.generate(DAY, rows, 4, STABLE)
            plain = best_of(partial(score_frame, model, frame, spec))
            conformal = best_of(partial(scored_sets, model, frame, spec, rule))
            print(f"{name} {rows} rows: threshold {plain * 1000:.2f} ms, "
                  f"conformal with set names {conformal * 1000:.2f} ms")


if __name__ == "__main__":
    main()
