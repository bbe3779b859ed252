"""Serving speed: single-record latency and throughput over HTTP against the in-process limit.

For each dataset a champion is trained on a generated batch (not timed) in a scratch data home,
`overnight serve` runs it under gunicorn (2 workers x 4 threads, at most 4 connections per
worker: the defaults) on a loopback port, and wrk
(Debian's `wrk` package: `apt-get install wrk`) sends POST requests from a second process:
single records at a fixed concurrency (p50 / p99 latency, requests per second), then bodies of
1000 records (rows per second). Beside each, `score_frame` is timed in this process on the
same records: the pipeline's own `predict_proba` speed is the limit an HTTP server can reach.
wrk, gunicorn and this script share the machine's cores, so compare the ratios of one run.
The price of artifact signatures is measured apart (`signature_checks`): verifying one artifact
of each champion (read, sha256, HMAC) beside unpickling it. Verification runs when a worker
loads a version, never per request, so it adds nothing to the request figures.
The price of the durable prediction log is measured apart too (`durable_log`): single-record
requests per second and p99 of `medical` (else the first dataset) with a fresh server per log
setting, in two rounds (rows buffered in memory as before, the baseline; durable with fsync
never, interval, always), and the time of one `PredictionLog.append` of a one-record request
in this process.
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
ALGORITHMS = {"customer": "logistic_regression", "medical": "logistic_regression", "news": "sgd"}
# (workers, threads, connections per worker; None = the default, which is threads); one
# thread = gunicorn's sync worker; 1000 connections = gunicorn's own default
SERVER_CHOICES = [(2, 1, None), (2, 4, None), (2, 4, 1000), (2, 8, None), (2, 8, 1000),
                  (3, 4, None)]
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


LOG_SETTINGS = {
    "buffered (baseline, not durable)": {"OVERNIGHT_LOG_MODE": "buffered"},
    "durable, fsync never": {"OVERNIGHT_LOG_FSYNC": "never"},
    "durable, fsync interval (default)": {"OVERNIGHT_LOG_FSYNC": "interval"},
    "durable, fsync always": {"OVERNIGHT_LOG_FSYNC": "always"},
}


def append_costs(dataset: str, record: dict[str, Any], appends: int = 3000
                 ) -> dict[str, float]:
    """Median microseconds of one `PredictionLog.append` of a one-record request, per setting
    (in this process, so without HTTP noise); compaction runs in its thread as in a worker."""
    from models.serving.logs import PredictionLog
    from models.serving.wal import log_settings

    row = {"prediction_id": "x", "dataset": dataset, "model_version": f"{dataset}-v1",
           "alias": "champion", "role": "served", "request_id": "r",
           "predicted_at": pd.Timestamp.now(), "predicted_class": "c", "predicted_index": 0,
           "confidence": 0.9, "needs_review": False, "probabilities": {"a": 0.9, "b": 0.1},
           "inputs": record, "latency_ms": 1.0, "source_file": None}
    costs = {}
    for name, env in LOG_SETTINGS.items():
        folder = Path(tempfile.mkdtemp(prefix="bench-log-"))
        log = PredictionLog(folder, settings=log_settings(env))
        log.start()
        times = []
        for i in range(appends):
            start = time.perf_counter()
            log.append([{**row, "prediction_id": f"p{i}"}])
            times.append(time.perf_counter() - start)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)
        costs[name] = round(sorted(times)[len(times) // 2] * 1e6, 1)
    return costs


def durable_log_costs(overnight: str, dataset: str, body: Path, seconds: int,
                      connections: int, rounds: int = 2) -> list[dict[str, Any]]:
    """Single-record requests per second and latency under each prediction-log setting (a
    fresh server each, the same artifact; the settings take turns `rounds` times, so that a
    burst of load from elsewhere on the machine does not fall on one setting only): the
    price of "answered means on disk"."""
    from tests.support.servers import free_port, wait_until_up

    rows = []
    for round_, (name, env) in enumerate([*LOG_SETTINGS.items()] * rounds):
        port = free_port()
        server = subprocess.Popen([overnight, "serve", "--port", str(port), "--workers", "2",
                                   "--dataset", dataset],
                                  env={**os.environ, **env}, stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/v1/datasets/{dataset}/predict"
        try:
            wait_until_up(f"http://127.0.0.1:{port}/ready", server)
            wrk(url, body, 2, connections, 2)                       # warm up
            result = wrk(url, body, seconds, connections, min(connections, 2))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        rows.append({"log": name, "round": round_ // len(LOG_SETTINGS) + 1,
                     "dataset": dataset, "connections": connections,
                     "requests_per_second": result["requests_per_second"],
                     "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],
                     "non_2xx": result["non_2xx"]})
    return rows


def server_choices(overnight: str, dataset: str, body: Path, seconds: int,
                   connections: int) -> list[dict[str, Any]]:
    """Single-record requests per second and latency for each (workers, threads, connections
    per worker) choice: a fresh server each (one thread means gunicorn's sync worker, which
    closes the connection after each request; more use gthread, with keep-alive when the
    connections per worker exceed its threads). Each choice runs twice: with gunicorn's
    default of 1000 connections per worker, how the connections fall between the workers
    varies from run to run."""
    from models.serving.server import gunicorn_options
    from tests.support.servers import free_port, wait_until_up

    rows = []
    for workers, threads, per_worker in SERVER_CHOICES * 2:
        port = free_port()
        extra = ["--worker-connections", str(per_worker)] if per_worker else []
        server = subprocess.Popen([overnight, "serve", "--port", str(port), "--workers",
                                   str(workers), "--threads", str(threads), "--dataset",
                                   dataset, *extra], env=os.environ.copy(),
                                  stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/v1/datasets/{dataset}/predict"
        try:
            wait_until_up(f"http://127.0.0.1:{port}/ready", server)
            wrk(url, body, 2, connections, 2)                       # warm up
            result = wrk(url, body, seconds, connections, 2)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        rows.append({"workers": workers, "threads": threads,
                     "connections_per_worker": per_worker or threads,
                     "worker_class": gunicorn_options("127.0.0.1", 0, workers, threads)[
                         "worker_class"],
                     "dataset": dataset, "connections": connections,
                     "requests_per_second": result["requests_per_second"],
                     "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"],
                     "non_2xx": result["non_2xx"]})
        print(rows[-1], flush=True)
    return rows


def scoring_counts(base: str, dataset: str) -> tuple[float, float]:
    """The server's model calls and scored requests of a dataset so far (from /metrics): how
    many single-record requests one `predict_proba` call served (adaptive batching)."""
    import urllib.request

    text = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
    def total(name: str) -> float:
        return sum(float(v) for v in re.findall(
            rf'^{name}\{{dataset="{dataset}"\}} (\S+)$', text, re.MULTILINE))
    return total("overnight_scoring_calls_total"), total("overnight_scored_requests_total")


def in_process(dataset: str, one: pd.DataFrame, batch: pd.DataFrame) -> dict[str, float]:
    """The limit: the champion's own `predict_proba` on the same records (already a frame of
    model inputs), in this process, with the same artifact."""
    from models.data.spec import feature_frame
    from models.serving.batch import current_champion

    champion = current_champion(dataset)
    one, batch = feature_frame(one, champion.spec), feature_frame(batch, champion.spec)
    for frame in (one, batch):
        champion.model.predict_proba(frame)                     # warm up
    times = []
    for _ in range(200):
        start = time.perf_counter()
        champion.model.predict_proba(one)
        times.append(time.perf_counter() - start)
    batch_times = []
    for _ in range(10):
        start = time.perf_counter()
        champion.model.predict_proba(batch)
        batch_times.append(time.perf_counter() - start)
    times.sort()
    return {"single_p50_ms": times[len(times) // 2] * 1000,
            "single_p99_ms": times[int(len(times) * 0.99)] * 1000,
            "batch_rows_per_second": len(batch) / sorted(batch_times)[len(batch_times) // 2]}


def signature_costs(datasets: list[str], repeats: int = 20) -> list[dict[str, Any]]:
    """Per champion: artifact size, the median time to verify its signature (read the bytes,
    sha256, HMAC-SHA256, constant-time compare) and to unpickle those bytes."""
    import io

    import joblib

    from models.registry.versions import get_alias, get_version, verified_bytes

    rows = []
    for dataset in datasets:
        champion = get_alias(dataset, "champion")
        assert champion is not None
        version = get_version(champion)
        checks, loads = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            data = verified_bytes(version)
            checks.append(time.perf_counter() - start)
            start = time.perf_counter()
            joblib.load(io.BytesIO(data))
            loads.append(time.perf_counter() - start)
        check, load = sorted(checks)[repeats // 2], sorted(loads)[repeats // 2]
        rows.append({"dataset": dataset, "algorithm": version.algorithm,
                     "artifact_mb": round(len(data) / 1e6, 3),
                     "verify_ms": round(check * 1000, 3), "load_ms": round(load * 1000, 3),
                     "verify_share_of_load": round(check / load, 4)})
    return rows


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
    if not os.environ.get("OVERNIGHT_SIGNING_KEY"):    # a scratch key: ~/.config is left alone
        import secrets

        os.environ["OVERNIGHT_SIGNING_KEY"] = secrets.token_hex(32)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.servers import free_port, wait_until_up
    from tests.support.serving_support import records, register_champion
    from warehouse import connect, get_settings, migrate

    get_settings().ensure_dirs()
    with connect() as con:
        migrate(con)
    for dataset in args.datasets:
        register_champion(dataset, algorithm=ALGORITHMS[dataset], rows=5000)
    signatures = signature_costs(args.datasets)
    print(pd.DataFrame(signatures).to_string(index=False))
    port = free_port()
    overnight = str(Path(sys.executable).parent / "overnight")
    server = subprocess.Popen([overnight, "serve", "--port", str(port), "--workers", "2"],
                              env=os.environ.copy())
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
            many = wrk(url, batch_path, args.seconds, 4, 2)
            limit = in_process(dataset, pd.DataFrame(batch[:1]), pd.DataFrame(batch))
            for connections in args.connections:
                before = scoring_counts(base, dataset)
                single = wrk(url, one_path, args.seconds, connections, min(connections, 2))
                calls, requests = (after - first for after, first in
                                   zip(scoring_counts(base, dataset), before, strict=True))
                row = {"dataset": dataset, "algorithm": ALGORITHMS[dataset],
                       "connections": connections,
                       "http_single_p50_ms": single["p50_ms"],
                       "http_single_p99_ms": single["p99_ms"],
                       "http_requests_per_second": single["requests_per_second"],
                       "requests_per_model_call": round(requests / max(calls, 1), 2),
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
    choices = server_choices(overnight, args.datasets[0], home / f"{args.datasets[0]}-one.json",
                             args.seconds, max(args.connections))
    # the log's price shows best on the cheapest model (logistic regression on medical)
    first = "medical" if "medical" in args.datasets else args.datasets[0]
    log_costs = {"append_us": append_costs(first, records(first, 1, seed=3)[0]),
                 "http": durable_log_costs(overnight, first, home / f"{first}-one.json",
                                           args.seconds, max(args.connections))}
    print(pd.DataFrame(log_costs["http"]).round(2).to_string(index=False))
    print("append, microseconds:", log_costs["append_us"])
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(2).to_string(index=False))
    customer = table[(table["dataset"] == "customer")
                     & (table["connections"] == max(args.connections))]
    goal = {f"customer_single_600_rps_p99_under_25ms_at_{max(args.connections)}_connections":
            bool(((customer["http_requests_per_second"] >= 600)
                  & (customer["http_single_p99_ms"] < 25)).all()) if len(customer) else None,
            "batch_at_least_half_of_limit": bool((table["batch_share_of_limit"] >= 0.5).all())}
    print("goals:", goal)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {"workers": 2, "threads": 4, "connections_per_worker": 4,
                     "connections": args.connections,
                     "seconds": args.seconds, "load_average_after": os.getloadavg()},
        "results": rows, "goals": goal, "signature_checks": signatures,
        "server_choices": choices,
        "durable_log": log_costs}, indent=2))
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
