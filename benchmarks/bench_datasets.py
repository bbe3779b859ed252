"""Rows per second generated and ingested per dataset at 10k and 1M rows, with peak memory.

Each (dataset, size) case runs in its own process so that its peak resident memory
(ru_maxrss) is its own. Ingest = quality checks + one transaction into a fresh DuckDB file.
Figures are printed and written to benchmarks/results/datasets.json.

    .venv/bin/python benchmarks/bench_datasets.py [--sizes 10000 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "datasets.json"


def run_case(dataset: str, rows: int) -> dict[str, float]:
    """Generate and ingest one batch in this process; return timings and peak memory."""
    with tempfile.TemporaryDirectory() as home:
        os.environ["OVERNIGHT_HOME"] = home
        from models.data.batches import store_batch
        from models.data.datasets import BUILTIN
        from models.data.generators.base import STABLE
        from warehouse import connect, migrate

        with connect() as con:
            migrate(con)
        entry = BUILTIN[dataset]
        day = date(2026, 1, 1)
        start = time.perf_counter()
        frame = entry.generate(day, rows, 42, STABLE)
        generated = time.perf_counter() - start
        start = time.perf_counter()
        batch = store_batch(entry.spec, frame, batch_id="bench", batch_date=day,
                            source="generator")
        ingested = time.perf_counter() - start
        assert batch.n_rows == rows
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"dataset": dataset, "rows": rows, "generate_s": generated, "ingest_s": ingested,
            "generate_rows_per_s": rows / generated, "ingest_rows_per_s": rows / ingested,
            "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--datasets", nargs="+", default=["customer", "medical", "news"])
    parser.add_argument("--case", nargs=2, metavar=("DATASET", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case[0], int(args.case[1]))))
        return
    results = []
    print(f"{'dataset':<10}{'rows':>10}{'gen rows/s':>14}{'ingest rows/s':>15}{'peak MB':>10}")
    for dataset in args.datasets:
        for rows in args.sizes:
            out = subprocess.run([sys.executable, __file__, "--case", dataset, str(rows)],
                                 capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(result)
            print(f"{dataset:<10}{rows:>10}{result['generate_rows_per_s']:>14,.0f}"
                  f"{result['ingest_rows_per_s']:>15,.0f}{result['peak_rss_mb']:>10,.0f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": {"cpus": os.cpu_count(),
                                               "python": platform.python_version()},
                                   "results": results}, indent=2))
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
