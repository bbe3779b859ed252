"""The data the status board tests read, and a process that holds the warehouse.

`fill_board_home` runs two short nights through the real Prefect flow (under Prefect's test
harness), with real Metaflow training and drift reports, then sends requests through the
serving API (Flask test client) with a challenger in shadow, and collects their logs. It is
built once per session (`board_home` in conftest.py) and shared by tests/system/test_board.py and
tests/system/test_board_browser.py, which only read it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from warehouse import connect, migrate

DATASETS = ["customer", "news"]
NIGHTS = ("2026-11-16", "2026-11-17")
LAST_NIGHT = NIGHTS[-1]
CHAMPION = "customer-v1"
FAILED = ("news", "decide")          # a failure drill on the second night
TRAINING = {"trials": 1, "optimize": False, "cv_folds": 2, "window_days": 2,
            "algorithms": {"customer": "logistic_regression,dummy", "news": "naive_bayes,dummy"}}
ROWS = 800
# Served traffic of the customer champion (real API calls), a challenger in shadow.
SERVED = 60


def fill_board_home(root: Path) -> Path:
    """Two nights for customer and news (the customer's second brings concept drift, news'
    decide stage fails on purpose), then served predictions; returns the data home."""
    from prefect.testing.utilities import prefect_test_harness

    home = root / "home"
    timeline = root / "timeline.yaml"
    timeline.write_text(yaml.safe_dump({"name": "board", "datasets": {
        "customer": [{"scenario": "concept_drift", "from_day": 1, "to_day": 1}]}}))
    with pytest.MonkeyPatch.context() as patch, prefect_test_harness():
        patch.setenv("OVERNIGHT_HOME", str(home))
        with connect() as con:
            migrate(con)
        from orchestration.flows import nightly

        common = {"datasets": DATASETS, "timeline_file": str(timeline),
                  "timeline_start": NIGHTS[0], "rows": ROWS, "training": TRAINING}
        nightly(NIGHTS[0], **common)
        nightly(NIGHTS[1], drills=[":".join(FAILED)], **common)
        add_served_predictions()
    return home


def add_served_predictions() -> None:
    """Real traffic through the serving API: requests to the customer champion while a
    challenger scores each of them in shadow, logged to the landing zone and collected into
    the warehouse as the nightly flow would."""
    from models.registry.manifest import DatasetTraffic, Traffic, write_traffic
    from models.registry.versions import set_alias
    from models.serving.app import create_app
    from models.serving.config import ServingConfig
    from monitoring.collect import collect_serving_logs
    from tests.support.serving_support import records, register_champion

    challenger = register_champion("customer", seed=3, promote_it=False)
    set_alias("customer", "challenger", challenger.model_version, reason="board test: shadow")
    write_traffic(Traffic(datasets={"customer": DatasetTraffic(shadow=True)}))
    app = create_app(ServingConfig(datasets=["customer"], background=False))
    client = app.test_client()
    for start in range(0, SERVED, 10):
        response = client.post("/v1/datasets/customer/predict",
                               json=records("customer", 10, seed=start))
        assert response.status_code == 200, response.json
    app.extensions["overnight"]["log"].close()
    app.extensions["overnight"]["costs"].close()        # the worker's serving costs, landed
    collect_serving_logs()


HOLDER = """
import sys, threading, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS board_test_writes (written_at TIMESTAMP)")
print("ready", flush=True)
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
while not done.is_set():
    con.execute("INSERT INTO board_test_writes VALUES (now())")
    done.wait(0.2)
con.close()
"""


@contextmanager
def writer_holding(warehouse: Path) -> Iterator[subprocess.Popen]:
    """Another process with a read-write connection that keeps writing, until the block ends
    (what a nightly run looks like to the board)."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(warehouse)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield process
    finally:
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
