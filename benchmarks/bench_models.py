"""Fit and predict time and peak memory of each catalogue entry at 10k and 100k rows.

Each (dataset, algorithm, rows) case runs in its own process so its peak resident memory is
its own. Predict time is for the whole held-out 20 %. Also the single-row and 1000-row
predict latency (median of repeats) of the best pipeline by held-out macro F1. The RBF SVM is
quadratic in rows: it is measured at 10k only (the training flow subsamples it above that).
Figures are printed and written to benchmarks/results/models.json.

    .venv/bin/python benchmarks/bench_models.py [--sizes 10000 100000] [--datasets customer]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "models.json"
SVM_MAX_ROWS = 10_000


def run_case(dataset: str, algorithm: str, rows: int, latency: bool) -> dict[str, object]:
    from models.data.datasets import BUILTIN
    from models.data.generators.base import STABLE
    from models.learning.fit import fit_candidate, split_data

    entry = BUILTIN[dataset]
    frame = entry.generate(date(2026, 1, 1), int(rows / 0.8), 42, STABLE)
    split = split_data(frame, entry.spec, test_size=0.2, seed=0)
    result = fit_candidate(entry.spec, split, algorithm, cv_folds=0)
    out: dict[str, object] = {
        "dataset": dataset, "algorithm": algorithm, "rows": len(split.x_train),
        "fit_s": result.fit_seconds, "predict_s": result.predict_seconds,
        "predict_rows_per_s": len(split.x_test) / result.predict_seconds,
        "f1_macro": result.metrics["f1_macro"], "accuracy": result.metrics["accuracy"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if latency:
        model = result.model
        for n in (1, 1000):
            batch = split.x_test.head(n)
            timings = []
            for _ in range(30 if n == 1 else 10):
                start = time.perf_counter()
                model.predict_proba(batch)
                timings.append(time.perf_counter() - start)
            out[f"latency_{n}_ms"] = statistics.median(timings) * 1000
    return out


def _case(dataset: str, algorithm: str, rows: int, latency: bool = False) -> dict[str, object]:
    out = subprocess.run([sys.executable, __file__, "--case", dataset, algorithm, str(rows),
                          str(int(latency))], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--datasets", nargs="+", default=["customer", "medical"])
    parser.add_argument("--case", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        dataset, algorithm, rows, latency = args.case
        print(json.dumps(run_case(dataset, algorithm, int(rows), latency == "1")))
        return
    from models.learning.catalogue import algorithms_for

    results = []
    print(f"{'dataset':<9}{'algorithm':<21}{'rows':>8}{'fit s':>9}{'pred rows/s':>13}"
          f"{'F1':>7}{'peak MB':>9}")
    for dataset in args.datasets:
        for rows in args.sizes:
            for algorithm in algorithms_for("tabular"):
                if algorithm == "svm" and rows > SVM_MAX_ROWS:
                    continue
                r = _case(dataset, algorithm, rows)
                results.append(r)
                print(f"{dataset:<9}{algorithm:<21}{r['rows']:>8}{r['fit_s']:>9.2f}"
                      f"{r['predict_rows_per_s']:>13,.0f}{r['f1_macro']:>7.3f}"
                      f"{r['peak_rss_mb']:>9.0f}")
        small = [r for r in results if r["dataset"] == dataset and r["rows"] <= min(args.sizes)]
        best = max(small, key=lambda r: r["f1_macro"])
        lat = _case(dataset, str(best["algorithm"]), min(args.sizes), latency=True)
        results.append({**lat, "kind": "latency"})
        print(f"{dataset}: best {best['algorithm']}: single-row predict "
              f"{lat['latency_1_ms']:.2f} ms, 1000 rows {lat['latency_1000_ms']:.2f} ms")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": {"cpus": os.cpu_count(),
                                               "python": platform.python_version()},
                                   "results": results}, indent=2))
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
