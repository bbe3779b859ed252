"""`overnight serve` for real: gunicorn workers on a loopback port, thousands of requests from
several threads while another process holds the warehouse and a promotion happens mid-way,
then SIGTERM, ingest, and an exact count of every prediction id; then a tampered artifact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models.registry.versions import get_alias, promote
from monitoring.collect import collect_serving_logs
from tests.support.servers import overnight_serve, wait_for_every_worker
from tests.support.serving_support import data_home, records, register_champion
from warehouse import WarehouseLockedError, connect, get_settings

pytestmark = pytest.mark.slow
OVERNIGHT = str(Path(sys.executable).parent / "overnight")
THREADS, PER_THREAD = 6, 500


def _call(url: str, body: Any | None = None, timeout: float = 10) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("gunicorn") / "home"
    env = {**os.environ, "OVERNIGHT_HOME": str(home), "OVERNIGHT_LOCK_TIMEOUT_SECONDS": "30"}
    with data_home(home, OVERNIGHT_LOCK_TIMEOUT_SECONDS="30"):
        first = register_champion("customer")
        # flush by time only once a minute: what reaches the warehouse is flushed by size or
        # by the SIGTERM shutdown
        with overnight_serve(["--workers", "2", "--threads", "4", "--dataset", "customer",
                              "--flush-seconds", "60", "--flush-rows", "400"],
                             env, home.parent) as (proc, url):
            yield {"url": url, "proc": proc, "first": first.model_version, "env": env,
                   "home": home}


HOLD = ("import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
        "con.execute('CREATE TABLE IF NOT EXISTS holder_was_here (x INT)'); "
        "print('holding', flush=True); time.sleep(float(sys.argv[2]))")


def _hold_warehouse(seconds: float) -> subprocess.Popen[str]:
    """Another process with a read-write connection: nobody else can open the file."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(get_settings().warehouse_path),
                             str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_load_with_a_held_warehouse_and_a_mid_way_promotion_loses_nothing(server) -> None:
    url = f"{server['url']}/v1/datasets/customer/predict"
    second = register_champion("customer", seed=5, promote_it=False).model_version
    payloads = records("customer", 50)
    answers: list[list[tuple[float, int, str | None, str | None]]] = [[] for _ in range(THREADS)]

    settled = threading.Event()       # set 8 s after the promotion: the load goes on till then

    def client(index: int) -> None:
        i = 0
        while i < PER_THREAD or not settled.is_set():
            try:
                status, body = _call(url, payloads[(index * 7 + i) % len(payloads)])
            except OSError as error:          # a refused or dropped connection is an error
                status, body = -1, {"error": str(error)}
            i += 1
            prediction = body["predictions"][0] if status == 200 else {}
            answers[index].append((time.time(), status, prediction.get("prediction_id"),
                                   prediction.get("model_version")))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        promoted_at = _load_promote_and_settle(server, second)
    finally:
        settled.set()                 # a failure above must not leave the clients looping
        for thread in threads:
            thread.join(timeout=300)
    flat = [a for per_thread in answers for a in per_thread]
    assert len(flat) >= THREADS * PER_THREAD
    assert {status for _, status, _, _ in flat} == {200}
    versions = {version for _, _, _, version in flat}
    assert versions == {server["first"], second}, versions
    # every worker switched within seconds (until then, a request may reach a worker that
    # has switched or one that has not: each answers wholly with one version)
    late = [version for at, _, _, version in flat if at > promoted_at + 5]
    assert late and set(late) == {second}

    server["proc"].send_signal(signal.SIGTERM)
    assert server["proc"].wait(timeout=60) == 0
    counts = collect_serving_logs()
    ids = [prediction_id for _, _, prediction_id, _ in flat]
    assert counts["predictions"] == len(ids)
    with connect(read_only=True) as con:
        rows = con.execute("SELECT prediction_id, model_version FROM predictions"
                           " WHERE role = 'served'").fetchall()
    assert len(rows) == len(ids) and {r[0] for r in rows} == set(ids)
    by_id = dict(rows)
    assert all(by_id[prediction_id] == version for _, _, prediction_id, version in flat)
    # each worker landed its serving cost per model version (issue 21), the last at its exit
    with connect(read_only=True) as con:
        costs = dict(con.execute("SELECT model_version, sum(predictions) FROM serving_costs"
                                 " GROUP BY ALL").fetchall())
        workers = con.execute("SELECT count(DISTINCT worker), min(cpu_seconds)"
                              " FROM serving_costs").fetchone()
    assert costs == dict(Counter(version for _, _, _, version in flat))
    assert workers is not None and workers[0] == 2 and workers[1] > 0
    assert collect_serving_logs()["predictions"] == 0          # nothing twice


def test_a_restarted_server_refuses_a_tampered_champion_and_keeps_the_old(
        server, tmp_path: Path) -> None:
    env, home = server["env"], server["home"]
    if server["proc"].poll() is None:            # run alone: the module's server would
        server["proc"].terminate()               # report the tampered artifact too
        server["proc"].wait(timeout=60)
    # every worker must hold the champion before the tampering: a worker still booting
    # would meet the tampered artifact with nothing to keep (it answers 503, rightly)
    serving = get_alias("customer", "champion")
    assert serving is not None
    with overnight_serve(["--workers", "2", "--dataset", "customer"], env, tmp_path,
                         ready=lambda url: wait_for_every_worker(url, serving)
                         ) as (proc, url):
        tampered = register_champion("customer", seed=9, promote_it=False)
        artifact = Path(tampered.artifact_path)
        artifact.write_bytes(artifact.read_bytes()[:-16] + b"0" * 16)
        promote("customer", tampered.model_version, reason="tampered on disk")
        alerts_dir = home / "landing" / "_alerts"
        deadline = time.time() + 30                # every worker polls once a second; a busy
        while time.time() < deadline and len(list(alerts_dir.glob("alert-*.json"))) < 2:
            time.sleep(0.2)                        # machine may take longer than a few polls
        for _ in range(20):
            status, body = _call(f"{url}/v1/datasets/customer/predict", records("customer", 1))
            assert status == 200, body
            assert body["predictions"][0]["model_version"] == serving
        alerts = list((home / "landing" / "_alerts").glob("alert-*.json"))
        assert len(alerts) == 2                    # one per worker
        assert all(tampered.model_version in json.loads(a.read_text())["message"]
                   for a in alerts)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    collect_serving_logs()
    with connect(read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM alerts WHERE kind = 'artifact_refused'"
                             ).fetchone()[0]
    assert stored == 1                             # the two workers' reports are one alert


def _load_promote_and_settle(server: dict[str, Any], second: str) -> float:
    """While clients send load: logs roll to Parquet by size, a collect meets the held
    warehouse and keeps the files, a promotion lands; returns when it happened."""
    landed = server["home"] / "landing" / "_predictions"
    deadline = time.time() + 30            # generous: the machine may be busy
    while time.time() < deadline and not list(landed.glob("*.parquet")):
        time.sleep(0.1)
    assert list(landed.glob("*.parquet")), "no log file was flushed by size"
    holder = _hold_warehouse(10)
    # while the warehouse is held the ingest waits, then gives up, and the files stay
    with pytest.MonkeyPatch.context() as patch, pytest.raises(WarehouseLockedError):
        patch.setenv("OVERNIGHT_LOCK_TIMEOUT_SECONDS", "1")
        collect_serving_logs()
    assert list(landed.glob("*.parquet"))
    promote("customer", second, reason="mid-way promotion")    # waits for the holder
    promoted_at = time.time()
    holder.wait(timeout=30)
    time.sleep(max(0.0, promoted_at + 8 - time.time()))
    return promoted_at
