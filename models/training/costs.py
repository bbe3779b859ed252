"""What a training run costs: CPU seconds, wall time and peak memory of each of its tasks.

Each Metaflow task is a process of its own, so the operating system has already counted what
it used: `resource.getrusage` of the process (RUSAGE_SELF) plus its waited-for children
(RUSAGE_CHILDREN: a loky or subprocess worker a fit started) gives the CPU seconds, user and
system, since the process began, its imports and Metaflow's own start included (that is what
the task cost the machine, not only its `work_seconds`); `ru_maxrss` gives the peak resident
memory. Wall time is the process's age, read from /proc where there is one.

`task_cost` is called at the end of each step (in `train` even when the branch raises, so a
branch that `@catch` caught still shows what it burned); the join step gathers every task's
figures and `record_training_costs` writes one row per task and one `total` row to
`training_costs`, keyed by the run and the model version it registered. The `end` step
(Metaflow's closing task, no work) and attempts that `@retry` threw away are not counted: a
retried branch records its last attempt, with `attempts` saying how many there were.

This module imports only the standard library: every task of the flow imports it.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from datetime import UTC, datetime
from typing import Any

IMPORTED_AT = time.time()          # the fallback start of a process without /proc
TOTAL = "total"


def _maxrss_mb(usage: resource.struct_rusage) -> float:
    """ru_maxrss in MB: it counts kilobytes on Linux, bytes on macOS."""
    kilobytes = usage.ru_maxrss / 1024 if sys.platform == "darwin" else usage.ru_maxrss
    return kilobytes / 1024


def process_started_at() -> float:
    """When this process began (epoch seconds): /proc/self/stat's start time, else the time
    this module was imported (an underestimate of the age by the interpreter's start)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])            # field 22 of stat(5), counted after "(comm)"
        with open("/proc/uptime", encoding="ascii") as uptime:
            up = float(uptime.read().split()[0])
        return time.time() - (up - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return IMPORTED_AT


def task_cost(step: str, branch: str = "", *, attempts: int = 1, status: str = "ok"
              ) -> dict[str, Any]:
    """This process's cost so far: CPU seconds (self and children), wall seconds, peak MB."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = process_started_at()
    finished = time.time()
    return {"step": step, "branch": branch, "status": status, "attempts": attempts,
            "cpu_seconds": me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime,
            "wall_seconds": max(finished - started, 0.0),
            "peak_rss_mb": max(_maxrss_mb(me), _maxrss_mb(children)),
            "started_at": started, "finished_at": finished}


def gb_hours(peak_rss_mb: float, wall_seconds: float) -> float:
    """Memory held over time, priced per GB-hour: the peak, held for the whole task."""
    return peak_rss_mb / 1024 * wall_seconds / 3600


def total_cost(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's total: CPU and GB-hours summed over tasks, wall time from the first task's
    start to the last one's end (branches run in parallel), the largest peak."""
    return {"step": TOTAL, "branch": "", "status": "ok", "attempts": None,
            "cpu_seconds": sum(t["cpu_seconds"] for t in tasks),
            "wall_seconds": max(t["finished_at"] for t in tasks)
            - min(t["started_at"] for t in tasks),
            "peak_rss_mb": max(t["peak_rss_mb"] for t in tasks),
            "gb_hours": sum(gb_hours(t["peak_rss_mb"], t["wall_seconds"]) for t in tasks)}


def cost_rows(run_id: str, model_version: str | None, dataset: str,
              tasks: list[dict[str, Any]]) -> list[list[Any]]:
    """The `training_costs` rows of a run: one per task, then the total."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for task in [*tasks, total_cost(tasks)]:
        hours = task.get("gb_hours")
        if hours is None:
            hours = gb_hours(task["peak_rss_mb"], task["wall_seconds"])
        rows.append([run_id, model_version, dataset, task["step"], task["branch"],
                     task["status"], task["attempts"], task["cpu_seconds"],
                     task["wall_seconds"], task["peak_rss_mb"], hours, now])
    return rows


def record_training_costs(run_id: str, model_version: str | None, dataset: str,
                          tasks: list[dict[str, Any]]) -> int:
    """Write a run's cost rows (a re-run of the same join replaces them); returns how many."""
    from warehouse import transaction

    rows = cost_rows(run_id, model_version, dataset, tasks)
    with transaction() as con:
        con.execute("DELETE FROM training_costs WHERE run_id = ?", [run_id])
        con.executemany("INSERT INTO training_costs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        rows)
    return len(rows)


def record_costs(run_id: str, model_version: str | None, dataset: str,
                 tasks: list[dict[str, Any] | None], join: dict[str, Any]) -> dict[str, Any]:
    """The join step's call: its own figures measured last, the tasks' gathered (a branch
    without figures, e.g. one that died before measuring, is left out), stored; returns the
    total. The training is registered already: a warehouse that refuses the cost rows is
    reported on stderr and does not fail the run."""
    import duckdb

    from warehouse.connection import WarehouseError

    measured = [task for task in tasks if task is not None]
    try:
        record_training_costs(run_id, model_version, dataset, [*measured, join])
    except (WarehouseError, duckdb.Error) as error:   # e.g. a warehouse not migrated yet
        print(f"training costs of {run_id} not recorded: {error}", file=sys.stderr)
    return total_cost([*measured, join])
