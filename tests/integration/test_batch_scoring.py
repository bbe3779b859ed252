"""`overnight predict`: a file with some invalid rows is scored like the API would score it,
the invalid rows go to a rejects file with their reasons, and the predictions are logged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from models.serving.app import create_app
from models.serving.batch import BatchScoringError, rejects_path, score_file
from models.serving.config import ServingConfig
from monitoring.collect import collect_serving_logs
from tests.support.serving_support import records, register_champion
from warehouse import connect

OVERNIGHT = str(Path(sys.executable).parent / "overnight")


@pytest.fixture
def scoring_file(warehouse_path: Path, tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """30 good customer rows with an id column, a missing value, and 3 invalid rows."""
    register_champion("customer")
    frame = pd.DataFrame(records("customer", 30))
    frame.insert(0, "customer_id", [f"c{i:03d}" for i in range(len(frame))])
    frame.loc[4, "annual_income"] = None           # missing: imputed, not rejected
    frame["age"] = frame["age"].astype(object)
    frame.loc[7, "age"] = "forty"                  # not a number
    frame.loc[12, "age"] = 500                     # out of range
    frame.loc[20, "region"] = "mars"               # unknown category
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_scores_valid_rows_rejects_the_rest_like_the_api(scoring_file, tmp_path) -> None:
    source, _ = scoring_file
    out = tmp_path / "scored.parquet"
    result = score_file("customer", source, out.with_suffix(".csv"), chunk_rows=8,
                        progress=False)
    assert (result.scored, result.rejected) == (27, 3)
    scored = pd.read_csv(result.output)
    rejects = pd.read_csv(result.rejects)
    assert result.rejects == rejects_path(out.with_suffix(".csv"))
    assert rejects["row_number"].tolist() == [7, 12, 20]
    assert rejects["customer_id"].tolist() == ["c007", "c012", "c020"]
    reasons = rejects["reason"].tolist()
    assert "age: Input should be a valid number" in reasons[0]
    assert "age: Input should be less than or equal to 80" in reasons[1]
    assert reasons[2].startswith("region: Input should be 'north'")
    assert scored["customer_id"].tolist() == [f"c{i:03d}" for i in range(30)
                                              if i not in (7, 12, 20)]

    app = create_app(ServingConfig(background=False))
    good = [r for i, r in enumerate(records("customer", 30)) if i not in (7, 12, 20)]
    for row in good:
        if row is good[4]:
            row["annual_income"] = None
    response = app.test_client().post("/v1/datasets/customer/predict", json=good[:20])
    response2 = app.test_client().post("/v1/datasets/customer/predict", json=good[20:])
    api = response.json["predictions"] + response2.json["predictions"]
    assert scored["predicted_class"].tolist() == [p["class_name"] for p in api]
    for j, name in enumerate(["Low", "Medium", "High"]):
        assert scored[f"proba_{name}"].round(5).tolist() == pytest.approx(
            [p["probabilities"][name] for p in api], abs=1e-5), j
    assert scored["needs_review"].tolist() == [p["needs_review"] for p in api]

    app.extensions["overnight"]["log"].flush()
    collect_serving_logs()
    with connect(read_only=True) as con:
        logged = con.execute("SELECT count(*), min(source_file), count(DISTINCT request_id)"
                             " FROM predictions WHERE role = 'batch'").fetchone()
        same = con.execute("SELECT count(*) FROM predictions WHERE role = 'batch'"
                           " AND list_contains(?, prediction_id)",
                           [scored["prediction_id"].tolist()]).fetchone()[0]
    assert logged == (27, "customers.csv", 1) and same == 27


def test_parquet_in_and_out_without_rejects(warehouse_path: Path, tmp_path: Path) -> None:
    register_champion("news", algorithm="naive_bayes")
    source = tmp_path / "articles.parquet"
    pd.DataFrame(records("news", 12)).to_parquet(source)
    result = score_file("news", source, tmp_path / "out.parquet", progress=False,
                        log_predictions=False)
    assert (result.scored, result.rejected, result.rejects) == (12, 0, None)
    scored = pd.read_parquet(result.output)
    assert len(scored) == 12 and set(scored["model_version"]) == {"news-v1"}
    assert not rejects_path(tmp_path / "out.parquet").exists()


def test_unusable_requests_are_clear_errors(warehouse_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    pd.DataFrame(records("customer", 3)).drop(columns=["region"]).to_csv(source, index=False)
    with pytest.raises(BatchScoringError, match="no champion"):
        score_file("customer", source, tmp_path / "out.csv", progress=False)
    register_champion("customer")
    with pytest.raises(BatchScoringError, match="lacks the feature columns region"):
        score_file("customer", source, tmp_path / "out.csv", progress=False)
    assert not (tmp_path / "out.csv").exists() and not list(tmp_path.glob(".out*"))
    with pytest.raises(BatchScoringError, match=r"\.csv or \.parquet"):
        score_file("customer", source, tmp_path / "out.xlsx", progress=False)
    with pytest.raises(BatchScoringError, match="does not exist"):
        score_file("customer", tmp_path / "nope.csv", tmp_path / "out.csv", progress=False)


def test_the_command_prints_one_line_errors_and_results(scoring_file, tmp_path) -> None:
    source, _ = scoring_file
    env = os.environ.copy()
    ok = subprocess.run([OVERNIGHT, "predict", "--dataset", "customer", "--file", str(source),
                         "--out", str(tmp_path / "o.csv")], env=env, capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "27 rows scored by customer-v1" in ok.stdout and "3 rows rejected" in ok.stdout
    bad = subprocess.run([OVERNIGHT, "predict", "--dataset", "weather", "--file", str(source),
                          "--out", str(tmp_path / "o.csv")], env=env, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "weather" in bad.stderr
