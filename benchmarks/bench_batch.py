"""Batch scoring of a file (`overnight predict`) against the champion's own speed on the rows.

For each case (customer: 1M generated rows; news: 100k generated articles) a champion is
trained on a generated batch (not timed) in a scratch data home, the rows are written as
Parquet and as CSV, and `overnight predict` scores each file in a child process (the
prediction log on, as in production). The limit is the champion's `predict_proba` on the same
rows in this process (the rows already in memory as a frame: no reading, checking, writing or
logging). Reported: rows per second of the command (wall time of the child, start-up
included) and of the limit, their ratio (goal: at least 0.7), and the child's peak resident
memory, beside the same command on a quarter of the rows (goal: flat in file size, since the
file is streamed in chunks). To show where the time goes, two more runs per file: a 10-row file
(the command's fixed price: interpreter, imports, loading and verifying the champion) and the
full file with `--no-log`; `no_log_no_start_share_of_limit` is the share the command would
reach with neither the log nor that fixed price.

    .venv/bin/python benchmarks/bench_batch.py [--rows 1000000] [--news-rows 100000]
        [--only customer|news]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

RESULTS = Path(__file__).parent / "results" / "batch.json"
ALGORITHMS = {"customer": "logistic_regression", "news": "sgd"}


def generated_rows(dataset: str, rows: int) -> pd.DataFrame:
    """`rows` generated records (a block of 50k generated once, repeated with other ids)."""
    from tests.support.serving_support import sample

    block = sample(dataset, min(rows, 50_000), seed=5)
    repeats = -(-rows // len(block))
    frame = pd.concat([block] * repeats, ignore_index=True).iloc[:rows]
    return frame.assign(customer_id=range(rows)) if dataset == "customer" else frame


def run_predict(overnight: str, dataset: str, source: Path, out: Path, chunk_rows: int,
                *extra: str) -> dict[str, float]:
    """Wall seconds and peak RSS (MB) of one `overnight predict` child process."""
    command = [overnight, "predict", "--dataset", dataset, "--file", str(source),
               "--out", str(out), "--chunk-rows", str(chunk_rows), *extra]
    wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "sys.exit(r.returncode)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True,
                          text=True, check=True)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": int(done.stdout.split()[-1]) / 1024}


def limit_rows_per_second(dataset: str, frame: pd.DataFrame) -> float:
    """The champion's own `predict_proba` on the rows, in memory, in this process."""
    from models.data.spec import feature_frame
    from models.serving.batch import current_champion

    champion = current_champion(dataset)
    x = feature_frame(frame, champion.spec)
    champion.model.predict_proba(x.iloc[:1000])
    start = time.perf_counter()
    champion.model.predict_proba(x)
    return len(frame) / (time.perf_counter() - start)


def bench(overnight: str, home: Path, dataset: str, rows: int, chunk_rows: int
          ) -> list[dict[str, Any]]:
    frame = generated_rows(dataset, rows)
    limit = limit_rows_per_second(dataset, frame)
    out_rows = []
    for suffix in (".parquet", ".csv"):
        runs: dict[int | str, dict[str, float]] = {}
        for size in (10, rows // 4, rows):
            source = home / f"{dataset}-{size}{suffix}"
            part = frame.iloc[:size]
            (part.to_parquet(source, index=False) if suffix == ".parquet"
             else part.to_csv(source, index=False))
            out = home / f"out-{size}{suffix}"
            runs[size] = run_predict(overnight, dataset, source, out, chunk_rows)
            if size == rows:        # where the time goes: the same file without the log
                runs["no_log"] = run_predict(overnight, dataset, source, out, chunk_rows,
                                             "--no-log")
            source.unlink()
        full, quarter = runs[rows], runs[rows // 4]
        row = {"dataset": dataset, "format": suffix.lstrip("."), "rows": rows,
               "chunk_rows": chunk_rows,
               "command_seconds": round(full["seconds"], 2),
               "command_rows_per_second": round(rows / full["seconds"]),
               "limit_rows_per_second": round(limit),
               "share_of_limit": round(rows / full["seconds"] / limit, 3),
               "peak_rss_mb": round(full["peak_rss_mb"], 1),
               "peak_rss_mb_quarter_file": round(quarter["peak_rss_mb"], 1),
               "memory_growth_4x_rows": round(full["peak_rss_mb"] / quarter["peak_rss_mb"], 3),
               "fixed_seconds_10_rows": round(runs[10]["seconds"], 2),
               "no_log_seconds": round(runs["no_log"]["seconds"], 2),
               "no_log_no_start_share_of_limit": round(
                   rows / max(runs["no_log"]["seconds"] - runs[10]["seconds"], 1e-9) / limit, 3)}
        print(row, flush=True)
        out_rows.append(row)
    return out_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--news-rows", type=int, default=100_000)
    parser.add_argument("--only", choices=["customer", "news"], default=None)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    os.environ["OVERNIGHT_HOME"] = str(home)
    os.environ.setdefault("OVERNIGHT_SIGNING_KEY", secrets.token_hex(32))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.serving_support import register_champion
    from warehouse import connect, get_settings, migrate

    get_settings().ensure_dirs()
    with connect() as con:
        migrate(con)
    overnight = str(Path(sys.executable).parent / "overnight")
    results = []
    # chunks: the default for tables; articles are larger rows, and the quarter file must
    # hold several chunks for "flat in file size" to be measured at all
    cases = [("customer", args.rows, 50_000), ("news", args.news_rows, 5_000)]
    for dataset, rows, chunk_rows in cases:
        if args.only not in (None, dataset):
            continue
        register_champion(dataset, algorithm=ALGORITHMS[dataset], rows=3000)
        results += bench(overnight, home, dataset, rows, chunk_rows)
    table = pd.DataFrame(results)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string(index=False))
    goals = {"at_least_70_percent_of_limit": bool((table["share_of_limit"] >= 0.7).all()),
             "memory_flat_in_file_size": bool((table["memory_growth_4x_rows"] < 1.25).all())}
    print("goals:", goals)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "algorithms": ALGORITHMS, "results": results, "goals": goals,
        "load_average_after": os.getloadavg()}, indent=2))
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
