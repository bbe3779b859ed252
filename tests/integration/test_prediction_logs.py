"""The prediction log and the landing ingest on their own: flush by size, time and close,
nothing lost under concurrent appends, exactly-once ingest even after a crash between the
insert and the move of a file; and the durable log itself: rows in a locked segment before
`append` returns, every fsync policy, a writer killed mid-write (torn tail, orphan compaction),
compaction repeated after a crash, and a disk that refuses writes (503, one alert)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from models.serving.app import create_app
from models.serving.config import ServingConfig
from models.serving.logs import PredictionLog, land_feedback
from models.serving.wal import (
    LogRefused,
    LogSettings,
    LogSettingsError,
    compact_orphans,
    log_settings,
    parquet_name,
    read_segment,
)
from monitoring.collect import collect_serving_logs
from tests.support.serving_support import data_home, records, register_champion
from warehouse import OvernightError, connect
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


# -- the durable log (models/serving/wal.py) ------------------------------------------------


def _segments(folder: Path) -> list[Path]:
    return sorted((folder / "wal").glob("*.log"))


def _run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A separate process with this test's data home (the environment carries it)."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=60, env=os.environ.copy())


def test_appended_rows_are_in_a_locked_segment_before_append_returns(home) -> None:
    folder = home / "landing" / "_predictions"
    log = PredictionLog(folder, flush_rows=1000)
    log.append([_row(1), _row(2)])
    log.append([_row(3)])
    [segment] = _segments(folder)
    content = read_segment(segment)          # read by path, as a crash would leave it
    assert [r["prediction_id"] for r in content.rows] == ["p000001", "p000002", "p000003"]
    assert not content.torn_tail and log.pending() == 3
    assert segment.read_bytes().count(b"\n") == 2            # one line per request
    swept = compact_orphans(folder)          # its writer is alive: another sweeper keeps off
    assert swept.segments == 0 and segment.exists() and not list(folder.glob("*.parquet"))
    landed = log.flush()
    assert landed is not None and landed.name == parquet_name(segment)
    assert _segments(folder) == [] and log.pending() == 0
    frame = pd.read_parquet(landed)
    assert list(frame["prediction_id"]) == ["p000001", "p000002", "p000003"]
    assert str(frame["predicted_at"].dtype).startswith("datetime64")
    assert frame["predicted_at"].iloc[0] == pd.Timestamp("2026-11-25 10:00:00")
    assert json.loads(frame["probabilities"].iloc[0]) == {"Low": 0.05, "Medium": 0.05,
                                                          "High": 0.9}
    log.close()


@pytest.mark.parametrize("fsync", ["always", "interval", "never"])
def test_every_fsync_policy_logs_the_same_rows(home, fsync: str) -> None:
    folder = home / "landing" / "_predictions"
    log = PredictionLog(folder, flush_rows=7, flush_seconds=0.05,
                        settings=LogSettings(fsync=fsync, fsync_seconds=0.02))
    log.start()
    for i in range(30):
        log.append([_row(i)])
    time.sleep(0.2)                            # several ticks: roll by age, interval fsync
    log.close()
    assert sorted(pd.concat(pd.read_parquet(p) for p in folder.glob("*.parquet"))
                  ["prediction_id"]) == [f"p{i:06d}" for i in range(30)]
    assert _segments(folder) == []


def test_log_settings_refuse_unknown_values_in_one_line() -> None:
    assert log_settings({}) == LogSettings(fsync="interval", fsync_seconds=1.0, mode="durable")
    assert log_settings({"OVERNIGHT_LOG_FSYNC": "Always"}).fsync == "always"
    for env, named in [({"OVERNIGHT_LOG_FSYNC": "sometimes"}, "OVERNIGHT_LOG_FSYNC"),
                       ({"OVERNIGHT_LOG_MODE": "yolo"}, "OVERNIGHT_LOG_MODE"),
                       ({"OVERNIGHT_LOG_FSYNC_SECONDS": "0"}, "OVERNIGHT_LOG_FSYNC_SECONDS")]:
        with pytest.raises(LogSettingsError, match=named) as caught:
            log_settings(env)
        assert isinstance(caught.value, OvernightError) and "\n" not in str(caught.value)


def test_buffered_mode_keeps_rows_in_memory_until_a_roll(home) -> None:
    folder = home / "landing" / "_predictions"
    log = PredictionLog(folder, flush_rows=5, settings=LogSettings(mode="buffered"))
    log.append([_row(1), _row(2)])
    assert log.pending() == 2 and _segments(folder) == []       # what a crash would lose
    log.append([_row(i) for i in range(3, 6)])                  # the roll writes and compacts
    assert _landed_rows(folder) == 5 and log.pending() == 0
    log.close()


KILLED_MID_WRITE = """
import os, signal, sys
import pandas as pd
from models.serving.logs import PredictionLog
log = PredictionLog(flush_rows=1000)
row = lambda i: {"prediction_id": f"k{i:04d}", "dataset": "customer", "model_version": "v1",
                 "alias": "champion", "role": "served", "request_id": f"r{i}",
                 "predicted_at": pd.Timestamp("2026-11-25 10:00:00"), "predicted_class": "Low",
                 "predicted_index": 0, "confidence": 0.9, "needs_review": False,
                 "probabilities": {"Low": 0.9}, "inputs": {"age": i}, "latency_ms": 1.0,
                 "source_file": None}
for i in range(5):
    log.append([row(2 * i), row(2 * i + 1)])
segment = log._active
os.write(segment.fd, b'[{"prediction_id": "torn-1", "dataset": "cust')   # died inside write(2)
print(segment.path, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writers_segment_is_compacted_without_its_torn_tail(warehouse_path) -> None:
    folder = landing_folder("predictions")
    mine = PredictionLog(folder, flush_rows=1000)      # a live writer beside the dead one
    mine.append([_row(1)])
    died = _run_python(KILLED_MID_WRITE)
    assert died.returncode == -signal.SIGKILL, died.stderr
    orphan = Path(died.stdout.strip())
    assert orphan.exists() and read_segment(orphan).torn_tail
    assert len(_segments(folder)) == 2
    swept = compact_orphans(folder)
    assert (swept.segments, swept.rows, swept.failed) == (1, 10, 0)
    assert not orphan.exists() and len(_segments(folder)) == 1    # the live one is untouched
    [landed] = folder.glob("*.parquet")
    assert landed.name == parquet_name(orphan)
    ids = sorted(pd.read_parquet(landed)["prediction_id"])
    assert ids == [f"k{i:04d}" for i in range(10)]               # every answered row, no torn
    counts = collect_serving_logs()
    assert counts["predictions"] == 10 and counts["rejected"] == 0
    mine.close()
    assert collect_serving_logs()["predictions"] == 1


def test_compacting_a_segment_again_after_a_crash_counts_nothing_twice(warehouse_path) -> None:
    folder = landing_folder("predictions")
    log = PredictionLog(folder, flush_rows=1000)
    log.append([_row(i) for i in range(20)])
    [segment] = _segments(folder)
    kept = segment.read_bytes()
    first = log.flush()
    assert first is not None and collect_serving_logs()["predictions"] == 20
    # as if the compactor died after renaming the Parquet file but before deleting the segment
    segment.write_bytes(kept)
    assert compact_orphans(folder).segments == 1
    assert [p.name for p in folder.glob("*.parquet")] == [first.name]   # the same name again
    again = collect_serving_logs()
    assert again["prediction_files"] == 1 and again["predictions"] == 0
    # and when the earlier copy is still waiting in the landing zone, it is overwritten
    segment.write_bytes(kept)
    compact_orphans(folder)
    segment.write_bytes(kept)
    compact_orphans(folder)
    assert len(list(folder.glob("*.parquet"))) == 1
    assert collect_serving_logs()["predictions"] == 0
    with connect(read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT prediction_id) FROM predictions"
                           ).fetchone() == (20, 20)
    log.close()


def _alert_files(kind: str) -> list[dict]:
    folder = landing_folder("alerts")
    return [a for p in sorted(folder.glob("*.json"))
            if (a := json.loads(p.read_text()))["kind"] == kind]


def test_a_refused_segment_is_one_alert_and_no_answer(home) -> None:
    folder = landing_folder("predictions")
    folder.mkdir(parents=True)
    (folder / "wal").write_text("a file where the segment folder should be")
    log = PredictionLog(folder, flush_rows=1000)
    for i in range(3):
        with pytest.raises(LogRefused, match="refuses writes"):
            log.append([_row(i)])
    assert log.pending() == 0 and log.refused == 3
    [alert] = _alert_files("prediction_log_refused")            # one per outage, not three
    assert alert["severity"] == "critical" and "503" in alert["message"]
    (folder / "wal").unlink()                                   # the operator frees the disk
    log.append([_row(10)])
    log.close()
    assert list(pd.read_parquet(next(folder.glob("*.parquet")))["prediction_id"]) == ["p000010"]
    assert len(_alert_files("prediction_log_refused")) == 1


FULL_DISK = """
import json, resource, signal, sys
import pandas as pd
from models.serving.logs import LogRefused, PredictionLog
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)         # EFBIG instead of death
log = PredictionLog(flush_rows=1000)
row = lambda i, text: {"prediction_id": f"f{i}", "dataset": "news", "model_version": "v1",
                       "alias": "champion", "role": "served", "request_id": f"r{i}",
                       "predicted_at": pd.Timestamp("2026-11-25"), "predicted_class": "Sports",
                       "predicted_index": 2, "confidence": 0.7, "needs_review": False,
                       "probabilities": {"Sports": 0.7}, "inputs": {"body": text},
                       "latency_ms": 1.0, "source_file": None}
log.append([row(1, "short")])
size = log._active.size
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, hard))   # the disk fills up mid-record
outcome = []
try:
    log.append([row(2, "x" * 5000)])
    outcome.append("answered")
except LogRefused as error:
    outcome.append(str(error))
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))          # space again
log.append([row(3, "after")])
segment = log._active.path.read_bytes()
log.close()
print(json.dumps({"outcome": outcome, "lines": segment.count(b"\\n"),
                  "clean": segment.endswith(b"\\n")}))
"""


def test_a_write_cut_short_by_a_full_disk_is_refused_and_cut_back(home) -> None:
    home.mkdir(parents=True, exist_ok=True)
    done = _run_python(FULL_DISK)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "File too large" in result["outcome"][0]            # the request was refused
    assert result["lines"] == 2 and result["clean"]              # no half record in between
    folder = landing_folder("predictions")
    ids = sorted(pd.concat(pd.read_parquet(p) for p in folder.glob("*.parquet"))
                 ["prediction_id"])
    assert ids == ["f1", "f3"]
    assert len(_alert_files("prediction_log_refused")) == 1


def test_the_api_answers_503_while_the_log_refuses_and_200_after(home) -> None:
    with data_home(home):
        register_champion("customer")
        app = create_app(ServingConfig(datasets=["customer"], flush_rows=1, background=False))
        client = app.test_client()
        url, record = "/v1/datasets/customer/predict", records("customer", 1)[0]
        assert client.post(url, json=record).status_code == 200
        wal = landing_folder("predictions") / "wal"
        shutil.rmtree(wal)
        wal.write_text("not a folder")
        refused = [client.post(url, json=record) for _ in range(3)]
        assert {r.status_code for r in refused} == {503}
        assert refused[0].json["error"] and refused[0].json["details"][0]["field"] == \
            "prediction_log"
        assert refused[0].headers["Retry-After"] == "5"
        assert len(_alert_files("prediction_log_refused")) == 1
        wal.unlink()
        answered = client.post(url, json=record)
        assert answered.status_code == 200
        app.extensions["overnight"]["log"].close()
        landed = pd.concat(pd.read_parquet(p)
                           for p in landing_folder("predictions").glob("*.parquet"))
        assert len(landed) == 2
        assert answered.json["predictions"][0]["prediction_id"] in set(landed["prediction_id"])


def test_serve_with_a_wrong_fsync_policy_stops_with_one_line(home) -> None:
    overnight = str(Path(sys.executable).parent / "overnight")
    done = subprocess.run([overnight, "serve", "--dataset", "customer", "--port", "1"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OVERNIGHT_LOG_FSYNC": "sometimes"})
    assert done.returncode == 1
    assert "OVERNIGHT_LOG_FSYNC='sometimes' is not one of always, interval, never" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("variable, value", [("OVERNIGHT_CLIENT_SECONDS", "0"),
                                             ("OVERNIGHT_MAX_JSON_DEPTH", "deep")])
def test_serve_with_a_wrong_edge_setting_stops_with_one_line(home, variable: str,
                                                             value: str) -> None:
    overnight = str(Path(sys.executable).parent / "overnight")
    done = subprocess.run([overnight, "serve", "--dataset", "customer", "--port", "1"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, variable: value})
    assert done.returncode == 1
    assert variable in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_column_blocks_land_as_the_same_rows_as_the_row_format(home) -> None:
    """A request logged as column blocks (what the API writes) lands exactly as the same rows
    logged one dict each (the first format, still read): values, nulls, JSON text."""
    import numpy as np

    from models.serving.logs import land_prediction_block

    rows = [_row(1), {**_row(2), "inputs": {"age": None}, "needs_review": True}]
    block = {"prediction_id": ["p000001", "p000002"], "dataset": "customer",
             "model_version": "customer-v1", "alias": "champion", "role": "served",
             "request_id": "r1", "predicted_at": "2026-11-25T10:00:00",
             "predicted_class": ["High", "High"], "predicted_index": np.array([2, 2]),
             "confidence": np.array([0.9, 0.9]), "needs_review": np.array([False, True]),
             "classes": ["Low", "Medium", "High"],
             "probabilities": np.array([[0.05, 0.05, 0.9], [0.05, 0.05, 0.9]]),
             "inputs": {"age": np.array([41.0, np.nan])}, "latency_ms": 3.0,
             "source_file": None}
    for row in rows:
        row["request_id"] = "r1"
    by_rows, by_blocks = home / "rows", home / "blocks"
    log = PredictionLog(by_rows, flush_rows=1000)
    log.append(rows)
    log.close()
    log = PredictionLog(by_blocks, flush_rows=1000)
    log.append_blocks([block])
    log.close()
    direct = land_prediction_block(block, home / "direct")
    expected = pd.read_parquet(next(by_rows.glob("*.parquet")))
    for landed in (next(by_blocks.glob("*.parquet")), direct):
        pd.testing.assert_frame_equal(pd.read_parquet(landed), expected)
    assert json.loads(expected["inputs"].iloc[1]) == {"age": None}
