"""One bad landed file never jams the landing zone: it is set aside with its reason and one
alert, every good file is still collected in the same run, and a second run adds nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from monitoring.collect import collect_serving_logs
from warehouse import connect
from warehouse.landing import landing_folder, rejected_folder

PREDICTIONS = pa.schema([
    ("prediction_id", pa.string()), ("dataset", pa.string()), ("model_version", pa.string()),
    ("alias", pa.string()), ("role", pa.string()), ("request_id", pa.string()),
    ("predicted_at", pa.timestamp("us")), ("predicted_class", pa.string()),
    ("predicted_index", pa.int64()), ("confidence", pa.float64()),
    ("needs_review", pa.bool_()), ("probabilities", pa.string()), ("inputs", pa.string()),
    ("latency_ms", pa.float64()), ("source_file", pa.string()),
])


def prediction_rows(prefix: str, n: int, index: int = 1) -> list[dict[str, object]]:
    now = datetime.now(UTC).replace(tzinfo=None)
    return [{"prediction_id": f"{prefix}-{i}", "dataset": "customer", "model_version": "v1",
             "alias": "champion", "role": "served", "request_id": f"r{i}", "predicted_at": now,
             "predicted_class": "Low", "predicted_index": index, "confidence": 0.9,
             "needs_review": False, "probabilities": '{"Low": 0.9}', "inputs": '{"age": 30}',
             "latency_ms": 1.0, "source_file": None} for i in range(n)]


def land_predictions(name: str, rows: list[dict[str, object]]) -> Path:
    folder = landing_folder("predictions")
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=PREDICTIONS), folder / name)
    return folder / name


def land_json(kind: str, name: str, payload: object) -> Path:
    folder = landing_folder(kind)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(payload))
    return folder / name


def counts() -> dict[str, int]:
    with connect(read_only=True) as con:
        return {table: int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
                for table in ("predictions", "feedback", "alerts")}


def overnight(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("overnight") or str(Path(sys.executable).parent / "overnight")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


def test_bad_files_are_set_aside_and_the_good_one_goes_in(warehouse_path: Path) -> None:
    good = land_predictions("pred-good.parquet", prediction_rows("good", 5))
    whole = land_predictions("pred-cut.parquet", prediction_rows("cut", 50)).read_bytes()
    (good.parent / "pred-cut.parquet").write_bytes(whole[: len(whole) // 2])   # truncated
    land_json("alerts", "alert-bad.json", {"kind": "artifact_refused", "message": "m",
                                           "severity": "urgent", "dedupe_key": "x:1"})
    folder = landing_folder("feedback")
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["good-0"], "truth": ["Low"]}), folder / "feedback-bad.parquet")

    out = overnight("collect")
    assert out.returncode == 0, out.stderr
    assert "collected 1 files" in out.stdout and "rejected 3 files" in out.stdout, out.stdout

    with connect(read_only=True) as con:
        ids = sorted(r[0] for r in con.execute("SELECT prediction_id FROM predictions").fetchall())
        alerts = con.execute("SELECT alert_id, kind, severity, message FROM alerts"
                             " ORDER BY alert_id").fetchall()
    assert ids == [f"good-{i}" for i in range(5)]
    assert [a[0] for a in alerts] == ["landing_rejected:alerts/alert-bad.json",
                                      "landing_rejected:feedback/feedback-bad.parquet",
                                      "landing_rejected:predictions/pred-cut.parquet"]
    assert {a[1] for a in alerts} == {"landing_rejected"} and {a[2] for a in alerts} == {"warning"}
    reasons = {}
    for kind, name in (("predictions", "pred-cut.parquet"), ("alerts", "alert-bad.json"),
                       ("feedback", "feedback-bad.parquet")):
        assert (rejected_folder(kind) / name).exists()
        sidecar = json.loads((rejected_folder(kind) / f"{name}.reason.json").read_text())
        assert sidecar["name"] == name and sidecar["rejected_at"]
        reasons[kind] = sidecar["reason"]
        assert not list(landing_folder(kind).glob("*.*[nt]"))    # nothing left waiting
    assert "not a readable Parquet file" in reasons["predictions"]
    assert "unknown severity 'urgent'" in reasons["alerts"]
    assert "missing column(s) prediction_id, label, received_at" in reasons["feedback"]
    assert "unknown severity" in alerts[0][3]

    before = counts()
    again = collect_serving_logs()
    assert (again["prediction_files"], again["feedback_files"], again["alerts"],
            again["rejected"]) == (0, 0, 0, 0)
    assert counts() == before == {"predictions": 5, "feedback": 0, "alerts": 3}


def test_a_file_the_warehouse_refuses_is_found_alone(warehouse_path: Path) -> None:
    """A file that passes the checks but that the warehouse refuses (a predicted_index too big
    for INTEGER) is set aside; the other file of the same transaction still goes in."""
    land_predictions("pred-a.parquet", prediction_rows("a", 3))
    land_predictions("pred-huge.parquet", prediction_rows("huge", 2, index=2**40))
    land_json("alerts", "alert-ok.json", {"kind": "artifact_refused", "message": "m",
                                          "severity": "critical", "dataset": "customer",
                                          "details": {}, "dedupe_key": "artifact:1"})
    result = collect_serving_logs()
    assert (result["prediction_files"], result["predictions"], result["alerts"],
            result["rejected"]) == (1, 3, 1, 1)
    assert "the warehouse refused its rows" in result["rejections"][0]["reason"]
    assert (rejected_folder("predictions") / "pred-huge.parquet").exists()
    assert counts() == {"predictions": 3, "feedback": 0, "alerts": 2}


def test_a_users_bad_file_does_not_block_the_nights_batch(warehouse_path: Path,
                                                          tmp_path: Path) -> None:
    from models.data.ingest import ingest_file
    from orchestration.stages import ingest_landing_files

    rows = "x,y\n" + "".join(f"{i},{'a' if i % 2 else 'b'}\n" for i in range(40))
    first = tmp_path / "first.csv"
    first.write_text(rows)
    assert ingest_file("mine", first, target="y", batch_date=date(2026, 1, 1)).status \
        == "accepted"
    folder = warehouse_path.parent / "landing" / "mine"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broken.csv").write_bytes(b"")
    (folder / "second.csv").write_text(rows.replace("\n0,", "\n40,"))
    batch = ingest_landing_files("mine", date(2026, 1, 2))
    assert batch.n_rows == 40 and batch.dataset == "mine"
    assert (rejected_folder("mine") / "broken.csv").exists()
    reason = json.loads((rejected_folder("mine") / "broken.csv.reason.json").read_text())
    assert "empty" in reason["reason"]
    with connect(read_only=True) as con:
        alert = con.execute("SELECT dataset, kind FROM alerts").fetchall()
    assert alert == [("mine", "landing_rejected")]
