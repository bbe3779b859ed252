"""`prefect deploy --all` against a real Prefect server on a free loopback port, and a worker
that runs a deployment end to end into the warehouse."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from warehouse import connect, migrate

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("prefect")
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(root / "prefect"),
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "OVERNIGHT_HOME": str(root / "home"),
           "OVERNIGHT_REPO": str(REPO), "PREFECT_LOGGING_LEVEL": "WARNING"}
    log = (root / "server.log").open("w")
    proc = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError((root / "server.log").read_text()[-3000:]) from None
                time.sleep(1)
        yield env
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _prefect(env: dict[str, str], *args: str, timeout: int = 300) -> str:
    out = subprocess.run([PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_deploy_all_registers_every_deployment_with_its_schedule(server) -> None:
    _prefect(server, "work-pool", "create", "local", "--type", "process")
    _prefect(server, "--no-prompt", "deploy", "--all")
    api = server["PREFECT_API_URL"]
    request = urllib.request.Request(f"{api}/deployments/filter", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        deployments = {d["name"]: d for d in json.load(response)}
    assert set(deployments) == {"nightly", "weekly-retrain", "train-dataset", "backfill",
                                "score-file"}
    crons = {name: [s["schedule"].get("cron") for s in d["schedules"]]
             for name, d in deployments.items()}
    assert crons["nightly"] == ["0 2 * * *"] and crons["weekly-retrain"] == ["0 4 * * 0"]
    assert crons["train-dataset"] == [] and crons["backfill"] == []
    assert crons["score-file"] == ["30 3 * * *"]
    assert [s["active"] for s in deployments["score-file"]["schedules"]] == [False]
    assert all(d["work_pool_name"] == "local" for d in deployments.values())


def test_worker_runs_a_deployment_into_the_warehouse(server) -> None:
    home = Path(server["OVERNIGHT_HOME"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OVERNIGHT_HOME", str(home))
        with connect() as con:
            migrate(con)
    training = {"trials": 1, "optimize": False, "cv_folds": 2, "max_workers": 2,
                "algorithms": {"customer": "logistic_regression,dummy"}}
    _prefect(server, "deployment", "run", "nightly/nightly", "--param", "night=2026-11-16",
             "--param", 'datasets=["customer"]', "--param", "rows=400",
             "--param", f"training={json.dumps(training)}")
    worker = _prefect(server, "worker", "start", "--pool", "local", "--run-once", timeout=900)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OVERNIGHT_HOME", str(home))
        with connect(read_only=True) as con:
            stages = dict(con.execute("SELECT stage, status FROM nightly_runs"
                                      " WHERE dataset = 'customer'").fetchall())
            champion = con.execute("SELECT model_version FROM model_aliases"
                                   " WHERE alias = 'champion'").fetchone()
    assert stages == {"ingest": "ok", "monitor": "skipped", "decide": "ok", "train": "ok",
                      "promote": "ok"}, worker[-3000:]
    assert champion == ("customer-v1",)
