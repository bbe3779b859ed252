"""Wall time of one training run per dataset (20 Optuna trials per algorithm, default
algorithms, one parallel branch per core) and where its seconds go: work or orchestration.

Each dataset gets one default-size batch in a fresh data home; `overnight train` runs the real
Metaflow flow. From Metaflow's client, per task: its duration (`created_at` to `finished_at`)
and `work_seconds`, which every step of the flow records: the seconds of the step's own work
(loading the window, tuning, cross-validation, fits, selection, reports, registration),
timed after the step's imports.

How overhead is computed (the issue asks to state it):

    task-time overhead = (sum of task durations - sum of work_seconds) / sum of task durations

i.e. the share of all task time that is not the steps' work: each task's process start, the
imports of Metaflow and of the libraries its step needs, Metaflow's bookkeeping and the
loading and saving of artifacts. The run's wall time also includes the scheduler's gaps
between tasks; `command_wall_s` adds the `overnight train` process around the run.

To show which part of the overhead cannot move, the script also measures the import floor of
each step: a fresh process doing only the imports its task does before its work (Metaflow and
the flow module for `end`; scikit-learn, Optuna, pandas and the catalogue for the others), and
how much of each run's overhead that floor alone explains. Branch work is split into tuning and
the rest (selection cross-validation, fit, evaluation). Figures are printed and written to
benchmarks/results/training.json.

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
from typing import Any

RESULTS = Path(__file__).parent / "results" / "training.json"
STEP_IMPORTS = "import models.training.flow; from models.training.steps import import_for; "
IMPORTS = {
    "python": "pass",
    "end": "import models.training.flow",
    "start": STEP_IMPORTS + "import_for('start')",
    "train": STEP_IMPORTS + "import_for('train')",
    "join": STEP_IMPORTS + "import_for('join')",
}


def import_floor(repeats: int = 5) -> dict[str, float]:
    """Least seconds (a floor: the host is shared) of a fresh process doing only the imports a
    task of each step does before its work (`end` imports only Metaflow and the flow module)."""
    floor = {}
    for name, code in IMPORTS.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        floor[name] = min(times)
    return floor


def floor_of_run(steps: dict[str, dict[str, float]], floor: dict[str, float]) -> float:
    """Seconds of the run's tasks that are fresh-process imports alone (the floor above)."""
    return sum(entry["tasks"] * floor.get(name, 0.0) for name, entry in steps.items())


def seconds(item: Any) -> float:
    """A Metaflow run's or task's duration, from its creation to its end."""
    return float((item.finished_at - item.created_at).total_seconds())


def task_row(task: Any) -> dict[str, Any]:
    """One task's duration and recorded work (0 for a branch that failed before recording)."""
    work = task.data.work_seconds if "work_seconds" in task else 0.0
    return {"step": task.parent.id, "seconds": seconds(task), "work_s": float(work)}


def branch_rows(run: Any) -> list[dict[str, Any]]:
    """Per algorithm: branch task seconds, work, tuning seconds, trials run and pruned."""
    rows = []
    for task in run["train"]:
        data = task.data
        if getattr(data, "failure", None) is not None:
            continue
        tuning = data.tuning or {}
        rows.append({
            "algorithm": data.algorithm,
            "task_s": seconds(task),
            "work_s": data.result.work_seconds,
            "tuning_s": tuning.get("seconds", 0.0),
            "trials": tuning.get("n_trials", 0), "pruned": tuning.get("n_pruned", 0)})
    return sorted(rows, key=lambda r: -r["work_s"])


def measure(dataset: str, trials: int, overnight: str) -> dict[str, Any]:
    """Train one dataset through the command line and read the run back from Metaflow."""
    from metaflow import Run, namespace
    run: Any

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    out = subprocess.run([overnight, "train", "--dataset", dataset, "--trials", str(trials),
                          "--quiet"], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    namespace(None)
    run = Run(out.stdout.split(":")[0].strip())
    tasks = [task_row(t) for step in run for t in step]
    task_seconds = sum(t["seconds"] for t in tasks)
    work = sum(t["work_s"] for t in tasks)
    steps: dict[str, dict[str, float]] = {}
    for t in tasks:
        entry = steps.setdefault(t["step"], {"tasks": 0, "task_s": 0.0, "work_s": 0.0})
        entry["tasks"] += 1
        entry["task_s"] += t["seconds"]
        entry["work_s"] += t["work_s"]
    return {
        "dataset": dataset, "trials": trials, "command_wall_s": wall,
        "run_wall_s": seconds(run),
        "tasks": len(tasks), "task_seconds": task_seconds, "work_s": work,
        "overhead_s": task_seconds - work, "task_overhead_share": (task_seconds - work)
        / task_seconds,
        "overhead_per_task_s": (task_seconds - work) / len(tasks),
        "steps": steps, "branches": branch_rows(run),
        "peak_rss_mb_max_child": max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                                     before) / 1024,
        "winner": run.data.summary.winner.name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--datasets", nargs="+", default=["customer", "medical", "news"])
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-training-"))
    os.environ["OVERNIGHT_HOME"] = str(home)
    # Metaflow reads its datastore location when imported
    os.environ["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = str(home / "metaflow")
    from models.data.batches import generate_batch
    from warehouse import connect, migrate

    with connect() as con:
        migrate(con)
    overnight = str(Path(sys.executable).parent / "overnight")
    floor = import_floor()
    print("import floor of a task, by step: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in floor.items()))
    results = []
    total_start = time.perf_counter()
    for dataset in args.datasets:
        generate_batch(dataset, date(2026, 1, 1))
        row = measure(dataset, args.trials, overnight)
        row["import_floor_s"] = floor_of_run(row["steps"], floor)
        row["import_floor_share_of_overhead"] = row["import_floor_s"] / row["overhead_s"]
        results.append(row)
        print(f"{dataset:<9} wall {row['command_wall_s']:6.1f} s  run {row['run_wall_s']:6.1f} s"
              f"  tasks {row['tasks']:2d}  task time {row['task_seconds']:6.1f} s  work "
              f"{row['work_s']:6.1f} s  overhead {row['task_overhead_share']:6.1%} "
              f"({row['overhead_per_task_s']:.1f} s/task, imports alone "
              f"{row['import_floor_share_of_overhead']:.0%} of it)  peak "
              f"{row['peak_rss_mb_max_child']:5.0f} MB  winner {row['winner']}")
        for name, step in row["steps"].items():
            print(f"    {name:<6} {step['tasks']:2d} tasks  {step['task_s']:6.1f} s  work "
                  f"{step['work_s']:6.1f} s")
        for branch in row["branches"]:
            print(f"      {branch['algorithm']:<20} task {branch['task_s']:5.1f} s  work "
                  f"{branch['work_s']:5.1f} s (tuning {branch['tuning_s']:5.1f} s, "
                  f"{branch['trials']} trials, {branch['pruned']} pruned)")
    total = time.perf_counter() - total_start
    task_seconds = sum(r["task_seconds"] for r in results)
    overhead = sum(r["overhead_s"] for r in results)
    print(f"all datasets: {total:.0f} s (training commands "
          f"{sum(r['command_wall_s'] for r in results):.0f} s); task-time overhead "
          f"{overhead / task_seconds:.1%}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "cpus": os.cpu_count(), "total_s": total,
        "train_commands_s": sum(r["command_wall_s"] for r in results),
        "task_overhead_share": overhead / task_seconds,
        "overhead_definition": "(sum of task durations - sum of the work_seconds each step "
                               "records after its imports) / sum of task durations",
        "import_floor_s": floor,
        "import_floor_share_of_overhead": sum(r["import_floor_s"] for r in results) / overhead,
        "setup": {"max_workers": os.cpu_count(), "pruner": "optuna MedianPruner(n_startup_trials"
                  "=3) on the running mean of the folds", "preprocessing": "fitted once per "
                  "fold, reused by every trial"},
        "results": results}, indent=2))
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
