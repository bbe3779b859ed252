"""Artifacts that cannot be swapped (issue 17), against the real `overnight serve` (gunicorn,
2 workers) and the real `overnight predict`: forged manifest entries that point at a pickle
which would create a canary file when unpickled are refused, the canary never appears, the
old champion keeps answering and each forgery lands one alert; a signed, registered version
is served."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from models.registry.versions import promote
from monitoring.collect import collect_serving_logs
from tests.support.servers import overnight_serve, wait_for_every_worker
from tests.support.serving_support import data_home, records, register_champion
from tests.support.signing_support import canary_pickle, forge_champion
from warehouse import connect

pytestmark = pytest.mark.slow
OVERNIGHT = str(Path(sys.executable).parent / "overnight")
FORGED_SIGNATURE = "hmac-sha256:" + "0" * 64


def _call(url: str, body: Any | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("forgery")
    home = root / "home"
    env = {**os.environ, "OVERNIGHT_HOME": str(home)}
    with data_home(home):
        first = register_champion("customer")
        with overnight_serve(["--workers", "2", "--threads", "2", "--dataset", "customer"],
                             env, home.parent,
                             ready=lambda url: wait_for_every_worker(url, first.model_version)
                             ) as (proc, url):
            yield {"url": url, "proc": proc, "first": first.model_version, "env": env,
                   "home": home, "root": root, "canary": root / "canary"}


def _alerts_naming(home: Path, version: str) -> list[dict[str, Any]]:
    found = [json.loads(p.read_text()) for p in (home / "landing" / "_alerts").glob("alert-*")]
    return [a for a in found if version in a["message"]]


def _refused_by_both_workers(server: dict[str, Any], version: str) -> None:
    """Each worker lands its refusal: wait for two, then check the old champion answers."""
    deadline = time.monotonic() + 15
    while len(_alerts_naming(server["home"], version)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    alerts = _alerts_naming(server["home"], version)
    assert len(alerts) == 2, alerts
    assert {a["kind"] for a in alerts} == {"artifact_refused"}
    assert all(server["first"] in a["message"] for a in alerts)      # "still serving v1"
    for _ in range(10):
        status, body = _call(f"{server['url']}/v1/datasets/customer/predict",
                             records("customer", 1))
        assert status == 200 and body["predictions"][0]["model_version"] == server["first"]
    assert _call(f"{server['url']}/ready")[0] == 200
    assert not server["canary"].exists(), "the forged pickle was unpickled"


def _predict_cli(server: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    source = server["root"] / "in.csv"
    pd.DataFrame(records("customer", 5)).to_csv(source, index=False)
    return subprocess.run([OVERNIGHT, "predict", "--dataset", "customer", "--file", str(source),
                           "--out", str(server["root"] / "out.csv")], env=server["env"],
                          capture_output=True, text=True, timeout=120)


def test_forged_manifest_entries_are_refused_and_the_old_champion_answers(server) -> None:
    home, canary = server["home"], server["canary"]
    # 1. a pickle dropped under artifacts/, its own sha256 and a made-up signature
    evil = home / "artifacts" / "customer" / "v99" / "model.joblib"
    forge_champion("customer", model_version="customer-v99", artifact_path=str(evil),
                   sha256=canary_pickle(evil, canary), signature=FORGED_SIGNATURE)
    _refused_by_both_workers(server, "customer-v99")
    batch = _predict_cli(server)
    assert batch.returncode == 1 and "does not verify" in batch.stderr, batch.stderr
    assert "Traceback" not in batch.stderr and not (server["root"] / "out.csv").exists()
    assert not canary.exists()

    # 2. a pickle outside the data home, unsigned
    outside = server["root"] / "elsewhere" / "model.joblib"
    forge_champion("customer", model_version="customer-v98", artifact_path=str(outside),
                   sha256=canary_pickle(outside, canary), signature=None)
    _refused_by_both_workers(server, "customer-v98")
    batch = _predict_cli(server)
    assert batch.returncode == 1 and "not signed" in batch.stderr, batch.stderr

    # 3. a registered, signed version whose file is swapped, with the swapped file's sha256
    swapped = register_champion("customer", seed=3, promote_it=False)
    forge_champion("customer", model_version=swapped.model_version,
                   artifact_path=str(swapped.artifact_path), card=swapped.card,
                   signature=swapped.signature,
                   sha256=canary_pickle(swapped.artifact_path, canary))
    _refused_by_both_workers(server, swapped.model_version)


def test_a_registered_signed_version_is_served(server) -> None:
    fresh = register_champion("customer", seed=4, promote_it=False)
    promote("customer", fresh.model_version, reason="signed and registered")
    deadline = time.monotonic() + 15
    answered = None
    while time.monotonic() < deadline:
        status, body = _call(f"{server['url']}/v1/datasets/customer/predict",
                             records("customer", 1))
        assert status == 200
        answered = body["predictions"][0]["model_version"]
        if answered == fresh.model_version:
            break
        time.sleep(0.3)
    assert answered == fresh.model_version
    assert _alerts_naming(server["home"], fresh.model_version) == []


def test_each_refusal_is_one_alert_after_collect(server) -> None:
    server["proc"].send_signal(signal.SIGTERM)
    assert server["proc"].wait(timeout=60) == 0
    collect_serving_logs()
    with connect(read_only=True) as con:
        rows = con.execute("SELECT alert_id, count(*) OVER () FROM alerts"
                           " WHERE kind = 'artifact_refused' ORDER BY alert_id").fetchall()
    assert [r[0] for r in rows] == [
        "artifact_refused:customer:customer-v2", "artifact_refused:customer:customer-v98",
        "artifact_refused:customer:customer-v99"]
    assert not server["canary"].exists()
