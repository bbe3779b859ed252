"""Conformal review end to end on real champions: a customer champion registered with a
calibration in its signed card answers `/v1/.../predict` (Flask test client) and
`overnight predict` with each row's prediction set, `needs_review` following the set; a news
champion registered without one keeps the old confidence-threshold rule in both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.data.datasets import builtin
from models.evaluation.conformal import CARD_KEY, ConformalRule, aligned_probabilities, calibrate
from models.learning.fit import make_model
from models.registry.artifacts import REFERENCE_FILE
from models.registry.versions import promote, register_model
from models.reports.production import save_reference
from models.serving.app import create_app
from models.serving.config import ServingConfig
from tests.support.serving_support import data_home, records, register_champion, sample

OVERNIGHT = str(Path(sys.executable).parent / "overnight")
ERROR_RATE = 0.05


def _calibrated_champion(dataset: str) -> tuple[Any, ConformalRule]:
    """Fit on one sample, calibrate on another (rows it never saw), register with the rule
    in the card, promote."""
    spec = builtin(dataset).spec
    frame = sample(dataset, 600, seed=21)
    model = make_model(spec, "logistic_regression", seed=0)
    model.fit(frame[spec.feature_names], frame[spec.target])
    held = sample(dataset, 400, seed=22)
    rule = calibrate(model, held[spec.feature_names], held[spec.target], ERROR_RATE)
    assert rule is not None
    with tempfile.TemporaryDirectory() as scratch:
        reference = save_reference(frame, spec, Path(scratch) / REFERENCE_FILE)
        version = register_model(model, spec, algorithm="logistic_regression",
                                 metrics={"accuracy": 0.5, "f1_macro": 0.5},
                                 training_batches=[], extra={CARD_KEY: rule.to_card()},
                                 attachments={REFERENCE_FILE: reference})
    promote(dataset, version.model_version, reason="test")
    return model, rule


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("conformal") / "home"
    with data_home(home, OVERNIGHT_LOCK_TIMEOUT_SECONDS="20"):
        model, rule = _calibrated_champion("customer")
        register_champion("news", algorithm="naive_bayes")          # no calibration: old rule
        app = create_app(ServingConfig(datasets=["customer", "news"], max_batch=200,
                                       background=False))
        yield {"client": app.test_client(), "model": model, "rule": rule, "home": home}


def _expected_sets(model: Any, rule: ConformalRule, rows: list[dict[str, Any]]
                   ) -> list[list[str]]:
    spec = builtin("customer").spec
    frame = pd.DataFrame(rows)[spec.feature_names]
    sets = rule.sets(aligned_probabilities(model, frame, list(spec.classes)))
    return [[c for c, inside in zip(spec.classes, row, strict=True) if inside] for row in sets]


def _mostly_missing(prediction: dict[str, Any]) -> bool:
    return "missing" in (prediction["review_reason"] or "")


def test_api_returns_the_set_and_needs_review_follows_its_size(served) -> None:
    rows = records("customer", 150, seed=31)
    response = served["client"].post("/v1/datasets/customer/predict", json=rows)
    assert response.status_code == 200, response.json
    predictions = response.json["predictions"]
    assert _expected_sets(served["model"], served["rule"], rows) == [
        p["prediction_set"] for p in predictions]
    for p in predictions:
        if not _mostly_missing(p):
            assert p["needs_review"] == (p["prediction_set"] != [p["class_name"]])
    sizes = [len(p["prediction_set"]) for p in predictions]
    assert any(s == 1 for s in sizes) and any(s != 1 for s in sizes)
    flagged = next(p for p in predictions if len(p["prediction_set"]) > 1)
    assert flagged["review_reason"] == (
        f"prediction set holds {len(flagged['prediction_set'])} classes at error rate 0.05")
    # every field of before is still there, unchanged in kind
    assert {"prediction_id", "class_name", "class_index", "probabilities", "confidence",
            "needs_review", "review_reason", "model_version", "alias"} <= set(predictions[0])


def test_a_model_without_calibration_keeps_the_confidence_threshold(served) -> None:
    response = served["client"].post("/v1/datasets/news/predict",
                                      json=records("news", 40, seed=32))
    assert response.status_code == 200, response.json
    for p in response.json["predictions"]:
        assert p["prediction_set"] is None
        if not _mostly_missing(p):
            assert p["needs_review"] == (p["confidence"] < 0.6)


def test_overnight_predict_writes_the_set_column_like_the_api(served, tmp_path) -> None:
    rows = records("customer", 60, seed=33)
    source = tmp_path / "customers.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    out = tmp_path / "scored.csv"
    env = {**os.environ, "OVERNIGHT_HOME": str(served["home"])}
    done = subprocess.run([OVERNIGHT, "predict", "--dataset", "customer", "--file",
                           str(source), "--out", str(out)], env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(out)
    sets = [json.loads(text) for text in scored["prediction_set"]]
    assert sets == _expected_sets(served["model"], served["rule"], rows)
    unexplained = ~scored["review_reason"].fillna("").str.contains("missing")
    expected = np.array([s != [c] for s, c in zip(sets, scored["predicted_class"],
                                                   strict=True)])
    np.testing.assert_array_equal(scored["needs_review"].to_numpy()[unexplained],
                                  expected[unexplained.to_numpy()])
    api = served["client"].post("/v1/datasets/customer/predict", json=rows).json
    assert [p["prediction_set"] for p in api["predictions"]] == sets
    assert scored["needs_review"].tolist() == [p["needs_review"] for p in api["predictions"]]


def test_overnight_predict_of_an_old_model_leaves_the_set_empty(served, tmp_path) -> None:
    from models.serving.batch import score_file

    rows = records("news", 20, seed=34)
    source = tmp_path / "news.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    with data_home(served["home"]):
        result = score_file("news", source, tmp_path / "out.csv", progress=False,
                            log_predictions=False)
    scored = pd.read_csv(result.output)
    assert scored["prediction_set"].isna().all()
    unexplained = ~scored["review_reason"].fillna("").str.contains("missing")
    np.testing.assert_array_equal(scored["needs_review"][unexplained],
                                  (scored["confidence"] < 0.6)[unexplained])
