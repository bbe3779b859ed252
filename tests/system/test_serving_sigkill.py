"""A gunicorn worker killed with SIGKILL under load loses no answered prediction.

Real `overnight serve` (2 workers x 4 threads) on a loopback port, six client threads, one
worker killed outright mid-way (as the OOM killer or a gunicorn timeout would), the load going
on while gunicorn starts a new worker; then SIGTERM and `collect`: every prediction answered
200 is in the warehouse exactly once, with its request id. The logs are compacted by size or
age only rarely here (`--flush-rows 100000 --flush-seconds 30`), so the killed worker's rows
sit in its log segment when it dies: the new worker's start must compact that orphan.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitoring.collect import collect_serving_logs
from tests.support.servers import overnight_serve
from tests.support.serving_support import data_home, records, register_champion
from warehouse import connect

pytestmark = pytest.mark.slow
OVERNIGHT = str(Path(sys.executable).parent / "overnight")
CLIENTS = 6
BEFORE_KILL, AFTER_KILL = 4.0, 6.0          # seconds of load on each side of the kill


def _children(pid: int) -> set[int]:
    """Live child processes of `pid` (gunicorn's workers), from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()      # after "(command name)"
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def _predict(url: str, body: Any, request_id: str) -> tuple[int, str | None]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={
        "Content-Type": "application/json", "X-Request-ID": request_id})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.load(response)["predictions"][0]["prediction_id"]
    except urllib.error.HTTPError as error:
        return error.code, None
    except (OSError, http.client.HTTPException, ValueError):   # died with the worker
        return -1, None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("sigkill") / "home"
    env = {**os.environ, "OVERNIGHT_HOME": str(home), "OVERNIGHT_LOCK_TIMEOUT_SECONDS": "30"}
    with data_home(home, OVERNIGHT_LOCK_TIMEOUT_SECONDS="30"):
        register_champion("customer")
        with overnight_serve(["--workers", "2", "--threads", "4", "--dataset", "customer",
                              "--flush-seconds", "30", "--flush-rows", "100000"],
                             env, home.parent) as (proc, url):
            yield {"url": url, "proc": proc, "home": home}


def test_sigkill_of_a_worker_under_load_loses_no_answered_prediction(server) -> None:
    url = f"{server['url']}/v1/datasets/customer/predict"
    master: subprocess.Popen[str] = server["proc"]
    payloads = records("customer", 40)
    answers: list[list[tuple[str, int, str | None]]] = [[] for _ in range(CLIENTS)]
    stop = threading.Event()

    def client(index: int) -> None:
        i = 0
        while not stop.is_set():
            request_id = f"c{index}-{i}"
            status, prediction_id = _predict(url, payloads[(index * 7 + i) % len(payloads)],
                                             request_id)
            answers[index].append((request_id, status, prediction_id))
            i += 1

    workers = _children(master.pid)
    assert len(workers) == 2, workers
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(BEFORE_KILL)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.time()
    wal = server["home"] / "landing" / "_predictions" / "wal"
    landed = server["home"] / "landing" / "_predictions"
    orphan_compacted = False
    while time.time() < killed_at + AFTER_KILL or not orphan_compacted:
        # the new worker's start compacts the dead one's segment while the server runs
        orphan_compacted = (any(f"-{victim}-" in p.name for p in landed.glob("pred-*.parquet"))
                            and not any(f"-{victim}-" in p.name for p in wal.glob("*.log")))
        if time.time() > killed_at + 30:
            break
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    now = _children(master.pid)
    assert len(now) == 2 and victim not in now, now          # gunicorn replaced the worker

    master.send_signal(signal.SIGTERM)
    assert master.wait(timeout=60) == 0
    assert not list(wal.glob("*.log"))                        # graceful exit compacted the rest
    counts = collect_serving_logs()
    assert counts["rejected"] == 0

    flat = [a for per_client in answers for a in per_client]
    answered = {prediction_id: request_id for request_id, status, prediction_id in flat
                if status == 200}
    after_kill = sum(1 for per_client in answers for _ in per_client) - len(answered)
    assert len(answered) > 200 and {s for _, s, _ in flat} <= {200, -1}
    with connect(read_only=True) as con:
        rows = con.execute("SELECT prediction_id, request_id FROM predictions").fetchall()
    stored = dict(rows)
    assert len(stored) == len(rows)                           # each prediction once
    missing = [p for p in answered if p not in stored]
    assert not missing, f"{len(missing)} of {len(answered)} answered predictions were lost"
    assert all(stored[p] == r for p, r in answered.items())
    assert orphan_compacted, "the killed worker's log segment was not compacted by a new worker"
    # rows of requests the dying worker had logged but not answered may also be there
    assert len(stored) - len(answered) <= after_kill
    assert counts["predictions"] == len(stored)
    assert collect_serving_logs()["predictions"] == 0         # nothing twice
