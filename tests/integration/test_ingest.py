"""A user's own files through `overnight ingest`: accepted, refused clearly, or quarantined."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from models.data.batches import load_training_frame
from models.data.datasets import get_spec
from models.data.generators import news
from models.data.ingest import IngestError, ingest_file
from warehouse import connect
from warehouse.reports import warehouse_status

OVERNIGHT = str(Path(sys.executable).parent / "overnight")


def overnight(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([OVERNIGHT, *args], capture_output=True, text=True, timeout=120)


def churn_frame(n: int = 120) -> pd.DataFrame:
    rows = range(n)
    return pd.DataFrame({
        "tenure_months": [1 + (i * 7) % 60 for i in rows],
        "monthly_fee": [20.0 + (i * 13) % 80 for i in rows],
        "plan": [("basic", "plus", "pro")[i % 3] for i in rows],
        "churned": [("yes", "no")[(i * 5) % 3 > 0] for i in rows],
    })


def counts() -> dict[str, int]:
    with connect(read_only=True) as con:
        return warehouse_status(con)["tables"]


def test_csv_dataset_registers_spec_and_flows(warehouse_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "churn.csv"
    churn_frame().to_csv(path, index=False)
    batch = ingest_file("churn", path, target="churned", batch_date=date(2026, 5, 1))
    assert batch.status == "accepted" and batch.n_rows == 120
    with connect(read_only=True) as con:
        spec = get_spec(con, "churn")
    assert spec.kind == "tabular" and spec.classes == ("no", "yes")
    assert spec.feature("plan").type == "categorical" and spec.feature("monthly_fee").type == (
        "numeric")
    # the same file again is the same batch, not a second copy
    assert ingest_file("churn", path, batch_date=date(2026, 5, 1)).already_present
    frame, used = load_training_frame(spec)
    assert len(frame) == 120 and used == [batch.batch_id]


def test_parquet_text_dataset(warehouse_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "articles.parquet"
    news.generate(date(2026, 5, 1), 80, 3).rename(columns={"category": "topic"}).to_parquet(path)
    batch = ingest_file("articles", path, target="topic", text_columns=("headline", "body"))
    assert batch.status == "accepted"
    with connect(read_only=True) as con:
        spec = get_spec(con, "articles")
    assert spec.kind == "text" and spec.features_of_type("text") == ["headline", "body"]


def test_text_columns_are_inferred_from_long_varied_strings(warehouse_path: Path,
                                                            tmp_path: Path) -> None:
    path = tmp_path / "articles.csv"
    news.generate(date(2026, 5, 1), 80, 3).to_csv(path, index=False)
    ingest_file("articles", path, target="category")
    with connect(read_only=True) as con:
        assert get_spec(con, "articles").features_of_type("text") == ["headline", "body"]


def _bad_file(kind: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{kind}.csv"
    frame = churn_frame()
    if kind == "wrong_type":
        frame["tenure_months"] = frame["tenure_months"].astype(object)
        frame.loc[3, "tenure_months"] = "three"
    elif kind == "missing_target":
        frame = frame.drop(columns="churned")
    elif kind == "unknown_column":
        frame["colour"] = "red"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "latin1":
        path.write_bytes(frame.assign(plan="caf\xe9").to_csv(index=False).encode("latin-1"))
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("kind", "message"), [
    ("wrong_type", "column 'tenure_months' must be numeric, but row 4 has 'three'"),
    ("missing_target", "target column 'churned' of dataset 'churn' is missing"),
    ("unknown_column", "unknown column(s) 'colour'"),
    ("empty", "the file is empty"),
    ("latin1", "not UTF-8"),
])
def test_bad_files_refused_with_one_line_and_nothing_written(
    warehouse_path: Path, tmp_path: Path, kind: str, message: str
) -> None:
    good = tmp_path / "good.csv"
    churn_frame().to_csv(good, index=False)
    assert overnight("ingest", "--dataset", "churn", "--file", str(good), "--target", "churned",
                     "--batch-date", "2026-05-01").returncode == 0
    before = counts()
    out = overnight("ingest", "--dataset", "churn", "--file", str(_bad_file(kind, tmp_path)),
                    "--batch-date", "2026-05-02")
    assert out.returncode == 1
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert counts() == before


def test_new_dataset_without_target_and_missing_file(warehouse_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    churn_frame().to_csv(path, index=False)
    with pytest.raises(IngestError, match="give --target"):
        ingest_file("fresh", path)
    with pytest.raises(IngestError, match="target column 'label' is not in the file"):
        ingest_file("fresh", path, target="label")
    with pytest.raises(IngestError, match="no such file"):
        ingest_file("fresh", tmp_path / "nope.csv", target="churned")
    assert counts()["batches"] == 0


def test_thirty_percent_missing_is_quarantined_and_reported(warehouse_path: Path,
                                                            tmp_path: Path) -> None:
    frame = churn_frame(200)
    frame.loc[frame.sample(frac=0.3, random_state=2).index, "monthly_fee"] = None
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    out = overnight("ingest", "--dataset", "churn", "--file", str(path), "--target", "churned")
    assert out.returncode == 0, out.stderr
    assert "quarantined because missing_values: 30.0% of 'monthly_fee' is missing" in out.stdout
    report = overnight("report", "quarantine", "-f", "json")
    rows = json.loads(report.stdout)
    assert len(rows) == 1 and "monthly_fee" in rows[0]["quarantine_reason"]


def test_generate_command(warehouse_path: Path, tmp_path: Path) -> None:
    out = overnight("generate", "--dataset", "customer", "--date", "2026-05-03", "--rows", "150",
                    "--scenario", "sudden_covariate_shift")
    assert out.returncode == 0, out.stderr
    assert "customer-2026-05-03: 150 rows, accepted" in out.stdout
    bad = overnight("generate", "--dataset", "weather", "--date", "2026-05-03")
    assert bad.returncode == 1 and "no generator for dataset 'weather'" in bad.stderr
    bad = overnight("generate", "--dataset", "customer", "--date", "03/05/2026")
    assert bad.returncode == 1 and "YYYY-MM-DD" in bad.stderr
    with connect(read_only=True) as con:
        assert con.execute("SELECT scenario FROM batches").fetchall() == [
            ("sudden_covariate_shift",)]
