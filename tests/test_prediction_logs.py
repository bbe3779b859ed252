"""The prediction-log buffer and the landing ingest on their own: flush by size, time and
close, nothing lost under concurrent appends, and exactly-once ingest even after a crash
between the insert and the move of a file."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from models.serving.logs import PredictionLog, land_feedback
from warehouse import connect
from warehouse.landing import ingest_feedback, ingest_predictions, landed_files, landing_folder


def _row(i: int, dataset: str = "customer") -> dict:
    return {"prediction_id": f"p{i:06d}", "dataset": dataset, "model_version": "customer-v1",
            "alias": "champion", "role": "served", "request_id": f"r{i}",
            "predicted_at": pd.Timestamp("2026-11-25 10:00:00"), "predicted_class": "High",
            "predicted_index": 2, "confidence": 0.9, "needs_review": False,
            "probabilities": {"Low": 0.05, "Medium": 0.05, "High": 0.9},
            "inputs": {"age": 40.0 + i}, "latency_ms": 3.0, "source_file": None}


def _landed_rows(folder: Path) -> int:
    return sum(len(pd.read_parquet(p)) for p in folder.glob("*.parquet"))


def test_flush_by_size_time_and_close(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_rows=10, flush_seconds=0.2)
    log.append([_row(i) for i in range(25)])           # over the size: one file of 25
    assert _landed_rows(tmp_path) == 25 and log.pending() == 0
    log.append([_row(100)])
    log.start()
    deadline = time.time() + 10
    while _landed_rows(tmp_path) < 26 and time.time() < deadline:
        time.sleep(0.05)
    assert _landed_rows(tmp_path) == 26 and log.pending() == 0      # flushed by time
    log.append([_row(200), _row(201)])
    log.close()
    assert _landed_rows(tmp_path) == 28                 # flushed at close
    assert not list(tmp_path.glob(".*"))                # no temporary file left behind


def test_concurrent_appends_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, flush_rows=37, flush_seconds=0.01)
    log.start()

    def append(start: int) -> None:
        for i in range(start, start + 500):
            log.append([_row(i)])

    threads = [threading.Thread(target=append, args=(k * 1000,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    ids = pd.concat(pd.read_parquet(p) for p in tmp_path.glob("*.parquet"))["prediction_id"]
    assert len(ids) == 4000 and ids.is_unique


def test_a_failed_write_keeps_the_rows(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    log = PredictionLog(blocked, flush_rows=1000)
    log.append([_row(1), _row(2)])
    with pytest.raises(OSError):
        log.flush()
    assert log.pending() == 2
    log.folder = tmp_path / "ok"
    log.close()
    assert _landed_rows(tmp_path / "ok") == 2


def test_ingest_is_exactly_once_even_after_a_crash_before_the_move(warehouse_path) -> None:
    folder = landing_folder("predictions")
    log = PredictionLog(folder, flush_rows=1000)
    log.append([_row(i) for i in range(50)])
    first = log.flush()
    log.append([_row(i) for i in range(50, 80)])
    log.flush()
    assert first is not None
    kept = first.read_bytes()
    result = ingest_predictions()
    assert (result.files, result.rows) == (2, 80) and landed_files("predictions") == []
    first.write_bytes(kept)              # as if the process died after commit, before the move
    again = ingest_predictions()
    assert (again.files, again.rows) == (1, 0)
    with connect(read_only=True) as con:
        count, distinct, probabilities = con.execute(
            "SELECT count(*), count(DISTINCT prediction_id),"
            " max(probabilities->>'$.High') FROM predictions").fetchone()
        source = con.execute("SELECT DISTINCT source_file FROM predictions").fetchall()
    assert (count, distinct) == (80, 80) and float(probabilities) == 0.9
    assert len(source) == 2 and all(s[0].startswith("pred-") for s in source)


def test_feedback_ingest_keeps_the_latest_label(warehouse_path) -> None:
    land_feedback("customer", [{"prediction_id": "p1", "label": "Low"},
                               {"prediction_id": "p2", "label": "High"}], source="test")
    assert ingest_feedback().rows == 2
    time.sleep(0.01)
    land_feedback("customer", [{"prediction_id": "p1", "label": "Medium"}], source="fix")
    ingest_feedback()
    with connect(read_only=True) as con:
        labels = dict(con.execute("SELECT prediction_id, label FROM feedback").fetchall())
    assert labels == {"p1": "Medium", "p2": "High"}
    shutil.rmtree(landing_folder("feedback"))
    assert ingest_feedback().files == 0
