"""Wall time and peak memory of one training run per dataset (20 Optuna trials per algorithm),
and the share of it that is orchestration overhead.

Each dataset gets one default-size batch in a fresh data home; `overnight train` runs the real
Metaflow flow (2 parallel branches). From Metaflow's client: the run's wall time, each task's
duration, and the work measured inside each branch (tuning, cross-validation, fit, evaluation).
Overhead as the issue defines it = wall time - summed work inside branches (can go negative
when two branches run at once); the per-task view = share of all task time not spent in
branch work. Figures are printed and written to benchmarks/results/training.json.

    .venv/bin/python benchmarks/bench_training.py [--trials 20] [--datasets customer medical]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "training.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--datasets", nargs="+", default=["customer", "medical", "news"])
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-training-"))
    os.environ["OVERNIGHT_HOME"] = str(home)
    # Metaflow reads its datastore location when imported
    os.environ["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = str(home / "metaflow")
    from metaflow import Run, namespace

    from models.data.batches import generate_batch
    from warehouse import connect, migrate

    with connect() as con:
        migrate(con)
    overnight = str(Path(sys.executable).parent / "overnight")
    results = []
    total_start = time.perf_counter()
    for dataset in args.datasets:
        generate_batch(dataset, date(2026, 1, 1))
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        out = subprocess.run([overnight, "train", "--dataset", dataset, "--trials",
                              str(args.trials), "--quiet"], capture_output=True, text=True,
                             check=True)
        wall = time.perf_counter() - start
        pathspec = out.stdout.split(":")[0].strip()
        namespace(None)
        run = Run(pathspec)
        tasks = [t for step in run for t in step]
        task_seconds = sum((t.finished_at - t.created_at).total_seconds() for t in tasks)
        branch_work = sum(t.data.result.work_seconds for t in run["train"]
                          if getattr(t.data, "failure", None) is None)
        run_wall = (run.finished_at - run.created_at).total_seconds()
        peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
        row = {"dataset": dataset, "trials": args.trials, "command_wall_s": wall,
               "run_wall_s": run_wall, "branch_work_s": branch_work,
               "overhead_s": run_wall - branch_work,
               "overhead_share": (run_wall - branch_work) / run_wall,
               "task_seconds": task_seconds,
               "task_overhead_share": (task_seconds - branch_work) / task_seconds,
               "tasks": len(tasks), "peak_rss_mb_max_child": peak,
               "winner": run.data.summary.winner.name}
        results.append(row)
        print(f"{dataset:<9} wall {wall:6.1f} s  run {run_wall:6.1f} s  branch work "
              f"{branch_work:6.1f} s  overhead {row['overhead_share']:6.1%}  task-time overhead"
              f" {row['task_overhead_share']:6.1%}  peak {peak:5.0f} MB  winner {row['winner']}")
    total = time.perf_counter() - total_start
    print(f"all datasets: {total:.0f} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"cpus": os.cpu_count(), "total_s": total,
                                   "results": results}, indent=2))
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
