"""Serving speed: single-record latency and throughput over HTTP against the in-process limit.

For each dataset a champion is trained on a generated batch (not timed) in a scratch data home,
`overnight serve` runs it under gunicorn (2 workers x 4 threads) on a loopback port, and wrk
(Debian's `wrk` package: `apt-get install wrk`) sends POST requests from a second process:
single records at a fixed concurrency (p50 / p99 latency, requests per second), then bodies of
1000 records (rows per second). Beside each, `score_frame` is timed in this process on the
same records: the pipeline's own `predict_proba` speed is the limit an HTTP server can reach.
wrk, gunicorn and this script share the machine's cores, so compare the ratios of one run.
Figures are printed and written to benchmarks/results/serving.json.

    .venv/bin/python benchmarks/bench_serving.py [--seconds 10] [--connections 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

RESULTS = Path(__file__).parent / "results" / "serving.json"
ALGORITHMS = {"customer": "random_forest", "medical": "logistic_regression", "news": "sgd"}
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "r"); wrk.body = f:read("*a"); f:close()
"""


def wrk(url: str, body: Path, seconds: int, connections: int, threads: int) -> dict[str, float]:
    """Run wrk once; its latency percentiles and requests per second."""
    script = body.with_suffix(".lua")
    script.write_text(LUA.format(body=body))
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
                          "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    def ms(label: str) -> float:
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert rps, out
    return {"p50_ms": ms("50%"), "p90_ms": ms("90%"), "p99_ms": ms("99%"),
            "requests_per_second": float(rps.group(1)),
            "non_2xx": int(errors.group(1)) if errors else 0}


def in_process(dataset: str, one: pd.DataFrame, batch: pd.DataFrame) -> dict[str, float]:
    """The limit: score_frame on the same records, in this process, with the same artifact."""
    from models.serving.batch import current_champion
    from models.serving.scoring import score_frame

    champion = current_champion(dataset)
    for frame in (one, batch):
        score_frame(champion.model, frame, champion.spec)      # warm up
    times = []
    for _ in range(200):
        start = time.perf_counter()
        score_frame(champion.model, one, champion.spec)
        times.append(time.perf_counter() - start)
    batch_times = []
    for _ in range(10):
        start = time.perf_counter()
        score_frame(champion.model, batch, champion.spec)
        batch_times.append(time.perf_counter() - start)
    times.sort()
    return {"single_p50_ms": times[len(times) // 2] * 1000,
            "single_p99_ms": times[int(len(times) * 0.99)] * 1000,
            "batch_rows_per_second": len(batch) / sorted(batch_times)[len(batch_times) // 2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, nargs="+", default=[2, 8],
                        help="Concurrent single-record connections (one wrk run each).")
    parser.add_argument("--datasets", nargs="+", default=list(ALGORITHMS))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    home = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    os.environ["OVERNIGHT_HOME"] = str(home)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.servers import free_port, wait_until_up
    from tests.serving_support import records, register_champion
    from warehouse import connect, get_settings, migrate

    get_settings().ensure_dirs()
    with connect() as con:
        migrate(con)
    for dataset in args.datasets:
        register_champion(dataset, algorithm=ALGORITHMS[dataset], rows=5000)
    port = free_port()
    overnight = str(Path(sys.executable).parent / "overnight")
    server = subprocess.Popen([overnight, "serve", "--port", str(port), "--workers", "2",
                               "--threads", "4"], env=os.environ.copy())
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/ready", server)
    rows: list[dict[str, Any]] = []
    try:
        for dataset in args.datasets:
            batch = records(dataset, 1000, seed=3)
            one_path, batch_path = home / f"{dataset}-one.json", home / f"{dataset}-batch.json"
            one_path.write_text(json.dumps(batch[0]))
            batch_path.write_text(json.dumps(batch))
            url = f"{base}/v1/datasets/{dataset}/predict"
            many = wrk(url, batch_path, args.seconds, 2, 1)
            limit = in_process(dataset, pd.DataFrame(batch[:1]), pd.DataFrame(batch))
            for connections in args.connections:
                single = wrk(url, one_path, args.seconds, connections, min(connections, 2))
                row = {"dataset": dataset, "algorithm": ALGORITHMS[dataset],
                       "connections": connections,
                       "http_single_p50_ms": single["p50_ms"],
                       "http_single_p99_ms": single["p99_ms"],
                       "http_requests_per_second": single["requests_per_second"],
                       "http_batch_rows_per_second": many["requests_per_second"] * 1000,
                       "non_2xx": single["non_2xx"] + many["non_2xx"],
                       "inproc_single_p50_ms": limit["single_p50_ms"],
                       "inproc_single_p99_ms": limit["single_p99_ms"],
                       "inproc_batch_rows_per_second": limit["batch_rows_per_second"]}
                row["batch_share_of_limit"] = (row["http_batch_rows_per_second"]
                                               / row["inproc_batch_rows_per_second"])
                rows.append(row)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(2).to_string(index=False))
    lowest = table[table["connections"] == min(args.connections)]
    goal = {f"single_p99_under_25ms_at_{min(args.connections)}_connections":
            bool((lowest["http_single_p99_ms"] < 25).all()),
            "batch_at_least_half_of_limit": bool((table["batch_share_of_limit"] >= 0.5).all())}
    print("goals:", goal)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {"workers": 2, "threads": 4, "connections": args.connections,
                     "seconds": args.seconds, "load_average_after": os.getloadavg()},
        "results": rows, "goals": goal}, indent=2))
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
