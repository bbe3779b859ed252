"""Seconds to SHAP-explain one request of records, per explainer kind (`?explain=true`).

Fits each model once on a stable generated batch, builds its `ShapExplainer` over the same
rows (the background), explains two records first (the permutation explainer's numba code
compiles on first use in a process: that warm-up is reported apart), then times one call
explaining `--records` fresh records. Figures are printed and written to
benchmarks/results/explain.json. Not meaningful on a shared machine; run it on a quiet one.

    .venv/bin/python benchmarks/bench_explain.py [--records 50] [--rows 600]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import pandas as pd

from models.data.datasets import builtin
from models.data.generators.base import STABLE
from models.evaluation.shap_values import ShapExplainer
from models.learning.fit import make_model

RESULTS = Path(__file__).parent / "results" / "explain.json"
CASES = (("customer", "logistic_regression"), ("customer", "random_forest"),
         ("customer", "gradient_boosting"), ("customer", "svm"), ("news", "naive_bayes"),
         ("news", "random_forest"))
DAY = date(2026, 11, 16)


def run(records: int, rows: int) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for dataset, algorithm in CASES:
        generator = builtin(dataset)
        spec = generator.spec
        frame = generator.generate(DAY, rows, 1, STABLE)
        model = make_model(spec, algorithm, None, seed=0)
        model.fit(frame[spec.feature_names], frame[spec.target])
        explainer = ShapExplainer(model, spec, frame)
        fresh = generator.generate(DAY, records, 3, STABLE)[spec.feature_names]
        started = time.perf_counter()
        explainer.explain(fresh.head(2))
        warm = time.perf_counter() - started
        started = time.perf_counter()
        explainer.explain(pd.DataFrame(fresh))
        seconds = time.perf_counter() - started
        out.append({"dataset": dataset, "algorithm": algorithm, "explainer": explainer.kind,
                    "records": records, "seconds": round(seconds, 3),
                    "first_two_seconds": round(warm, 3)})
        print(f"{dataset:9s} {algorithm:20s} {explainer.kind:12s} {records} records: "
              f"{seconds:.2f} s (first two: {warm:.2f} s)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50)
    parser.add_argument("--rows", type=int, default=600)
    args = parser.parse_args()
    results = run(args.records, args.rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.platform(), "results": results},
                                  indent=2) + "\n")


if __name__ == "__main__":
    main()
