"""The explanation of a logged prediction, after the fact: looked up by its id (bound, never
SQL text), recomputed with the version that answered it through the registry's verified
loading, equal to the explanation the API gave; the board's explanation page (Streamlit's
AppTest), `overnight explain` and the clinician's report of a medical prediction."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from monitoring.board import data
from monitoring.board.launch import app_path
from monitoring.collect import collect_serving_logs
from monitoring.explanations import explain_logged, global_importance
from tests.support.serving_support import data_home, records, register_champion

OVERNIGHT = str(Path(sys.executable).parent / "overnight")


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Champions of medical and news answer a few explained requests; logs collected."""
    from models.serving.app import create_app
    from models.serving.config import ServingConfig

    home = tmp_path_factory.mktemp("explain") / "home"
    with data_home(home, OVERNIGHT_LOCK_TIMEOUT_SECONDS="20"):
        medical = register_champion("medical")
        register_champion("news", algorithm="naive_bayes")
        app = create_app(ServingConfig(datasets=["medical", "news"], background=False))
        client = app.test_client()
        answers = {}
        for dataset in ("medical", "news"):
            response = client.post(f"/v1/datasets/{dataset}/predict?explain=true",
                                   json=records(dataset, 3, seed=21))
            assert response.status_code == 200, response.json
            answers[dataset] = response.json["predictions"]
        app.extensions["overnight"]["log"].close()
        collect_serving_logs()
        yield {"home": home, "answers": answers, "medical": medical.model_version}


def _record(prediction_id: str) -> dict[str, Any] | None:
    with data.reading() as con:
        return data.prediction_record(con, prediction_id)


def test_a_logged_prediction_is_explained_as_the_api_explained_it(logged) -> None:
    for dataset, answers in logged["answers"].items():
        for answer in answers:
            record = _record(answer["prediction_id"])
            assert record is not None and record["dataset"] == dataset
            assert record["predicted_class"] == answer["class_name"]
            again = explain_logged(record)
            served = answer["explanation"]
            assert again["predicted_class"] == served["predicted_class"]
            assert again["base_value"] == pytest.approx(served["base_value"], abs=1e-9)
            if dataset == "news":
                assert [w["word"] for w in again["toward_predicted"]] == \
                    [w["word"] for w in served["toward_predicted"]]
            else:
                assert [c["feature"] for c in again["contributions"]] == \
                    [c["feature"] for c in served["contributions"]]
                assert [c["contribution"] for c in again["contributions"]] == pytest.approx(
                    [c["contribution"] for c in served["contributions"]], abs=1e-9)


def test_unknown_and_hostile_ids_are_data_not_sql(logged) -> None:
    known = logged["answers"]["medical"][0]["prediction_id"]
    for typed in ("no-such-id", f"{known}' OR '1'='1", "' OR 1=1 --", "x" * 500, ""):
        assert _record(typed) is None, typed


def test_champion_global_importance_covers_every_indicator(logged) -> None:
    importance = global_importance(logged["medical"])
    from models.data.datasets import builtin

    assert {row["feature"] for row in importance} == set(builtin("medical").spec.feature_names)
    assert importance == sorted(importance, key=lambda row: -row["importance"])


def _open(prediction_id: str) -> AppTest:
    app = AppTest.from_file(str(app_path()), default_timeout=180)
    app.run()
    app.switch_page("views/explanation.py").run()
    app.text_input(key="explanation.id").input(prediction_id).run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_the_board_page_shows_a_prediction_and_says_when_an_id_is_unknown(logged) -> None:
    answer = logged["answers"]["medical"][0]
    app = _open(answer["prediction_id"])
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Class"] == answer["class_name"]
    assert metrics["Needs review"] == ("yes" if answer["needs_review"] else "no")
    assert metrics["Model"] == logged["medical"]
    captions = " ".join(c.value for c in app.caption)
    assert "shap:linear" in captions and "Mean absolute SHAP value" in captions
    assert not app.error, [e.value for e in app.error]
    assert any("Clinician" in b.label for b in app.get("download_button"))
    unknown = _open("'; DROP TABLE predictions; --")
    assert any("Unknown prediction id" in w.value for w in unknown.warning)
    assert [c.value for c in unknown.code] == ["'; DROP TABLE predictions; --"]
    assert _record(answer["prediction_id"]) is not None        # the table is still there


def test_overnight_explain_writes_the_clinicians_report(logged, tmp_path) -> None:
    answer = logged["answers"]["medical"][1]
    out = tmp_path / "report.html"
    env = {**os.environ, "OVERNIGHT_HOME": str(logged["home"]),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([OVERNIGHT, "explain", answer["prediction_id"], "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert answer["class_name"] in done.stdout and "shap:linear" in done.stdout
    page = out.read_text()
    assert f"Suspected diagnosis: {answer['class_name']}" in page
    assert f"{answer['confidence']:.0%}" in page
    assert ("Needs review by a clinician" in page) == answer["needs_review"]
    top = answer["explanation"]["contributions"][0]
    assert top["contribution"] != 0
    from models.reports.clinician import plain_name

    assert plain_name(top["feature"]) in page and "typical" in page
    unknown = subprocess.run([OVERNIGHT, "explain", "nope"], env=env, capture_output=True,
                             text=True, timeout=300)
    assert unknown.returncode == 1 and "unknown prediction id" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_the_clinicians_report_escapes_what_it_shows_and_reads_in_plain_words() -> None:
    from models.reports.clinician import clinician_report

    record = {"prediction_id": "p<1>", "model_version": "medical-v9", "predicted_at": "now",
              "predicted_class": "<script>alert(1)</script>", "confidence": 0.42,
              "needs_review": True, "probabilities": {"Healthy": 0.001, "Flu": 0.3}}
    explanation = {"review_reason": "confidence 0.420 below the threshold 0.6",
                   "typical": {"crp": 3.0}, "contributions": [
                       {"feature": "crp", "value": 80.0, "contribution": 1.2},
                       {"feature": "cough", "value": 0.0, "contribution": -0.3},
                       {"feature": "heart_rate", "value": None, "contribution": 0.1}]}
    page = clinician_report(record, explanation)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "C-reactive protein (CRP): 80 mg/L (typical 3 mg/L), strongly in favour" in page
    assert "Cough: absent, moderately against it." in page
    assert "Heart rate: not recorded, slightly in favour" in page
    assert "Needs review by a clinician: confidence 0.420 below the threshold 0.6" in page
    assert "Healthy: under 1%" in page and "42%" in page and "(low)" in page
