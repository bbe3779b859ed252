"""A/B verdicts of real served traffic: a champion and a challenger behind the Flask app (shadow
mode, then a canary), real requests and real labels through /v1/feedback, the serving logs
collected into the warehouse; the named reports count what the answers and labels say, the
A/B report and the board's page name the winner, and the gate finds the same shadow verdict."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flask.testing import FlaskClient
from streamlit.testing.v1 import AppTest

from models.data.datasets import builtin
from models.learning.fit import make_model
from models.registry.artifacts import HOLDOUT_FILE, REFERENCE_FILE
from models.registry.manifest import DatasetTraffic, Traffic, write_traffic
from models.registry.versions import ModelVersion, load_model, register_model, set_alias
from models.reports.production import save_holdout, save_reference
from models.serving.app import create_app
from models.serving.config import ServingConfig
from models.serving.routes.predict import routed_to_challenger
from models.serving.scoring import score_frame
from monitoring.ab_report import canary_verdicts, shadow_evidence, write_ab_report
from monitoring.board.launch import app_path
from monitoring.collect import collect_serving_logs
from monitoring.gate import SHADOW_EVIDENCE, validate
from tests.support.serving_support import register_champion, sample
from warehouse import connect
from warehouse.reports import run_report

DATASET = "customer"
SPEC = builtin(DATASET).spec
BATCH = 50


def as_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in frame[SPEC.feature_names].to_dict(orient="records")]


def register_challenger(scratch: Path) -> ModelVersion:
    """A logistic regression of customer with held-out rows, so the gate can judge it."""
    frame = sample(DATASET, 600, seed=4)
    model = make_model(SPEC, "logistic_regression", None, seed=3)
    model.fit(frame[SPEC.feature_names], frame[SPEC.target])
    held_out = sample(DATASET, 400, seed=5)
    attachments = {
        REFERENCE_FILE: save_reference(frame, SPEC, scratch / REFERENCE_FILE),
        HOLDOUT_FILE: save_holdout(held_out[SPEC.feature_names], held_out[SPEC.target], SPEC,
                                   scratch / HOLDOUT_FILE)}
    return register_model(model, SPEC, algorithm="logistic_regression",
                          metrics={"accuracy": 0.5, "f1_macro": 0.5}, training_batches=[],
                          attachments=attachments)


@pytest.fixture
def pair(warehouse_path: Path, tmp_path: Path) -> tuple[ModelVersion, ModelVersion]:
    """A majority-class champion and a logistic-regression challenger of customer."""
    champion = register_champion(DATASET, algorithm="dummy", seed=0)
    challenger = register_challenger(tmp_path)
    set_alias(DATASET, "challenger", challenger.model_version, reason="A/B test")
    return champion, challenger


@contextmanager
def serving(traffic: DatasetTraffic) -> Iterator[FlaskClient]:
    """The serving app with this traffic setting (read when the app starts)."""
    write_traffic(Traffic(datasets={DATASET: traffic}))
    app = create_app(ServingConfig(datasets=[DATASET], background=False))
    try:
        yield app.test_client()
    finally:
        app.extensions["overnight"]["log"].close()


def predict(client: FlaskClient, frame: pd.DataFrame, key: str | None = None
            ) -> list[dict[str, Any]]:
    headers = {"X-Routing-Key": key} if key else {}
    response = client.post(f"/v1/datasets/{DATASET}/predict", json=as_records(frame),
                           headers=headers)
    assert response.status_code == 200, response.json
    return response.json["predictions"]


def send_labels(client: FlaskClient, answers: list[dict[str, Any]], labels: pd.Series) -> None:
    body = {"dataset": DATASET, "labels": [
        {"prediction_id": a["prediction_id"], "label": str(label)}
        for a, label in zip(answers, labels, strict=True)]}
    response = client.post("/v1/feedback", json=body)
    assert response.status_code == 202 and response.json["rejected"] == [], response.json


def test_shadow_verdict_of_real_traffic(pair: tuple[ModelVersion, ModelVersion]) -> None:
    champion, challenger = pair
    frame = sample(DATASET, 300, seed=21).reset_index(drop=True)
    labelled = 240                                     # the last 60 answers get no label
    answers: list[dict[str, Any]] = []
    with serving(DatasetTraffic(shadow=True)) as client:
        for start in range(0, len(frame), BATCH):
            answers += predict(client, frame.iloc[start:start + BATCH])
        repeated = predict(client, frame.iloc[[0, 0]])     # one record twice in one request
        send_labels(client, answers[:labelled], frame[SPEC.target][:labelled])
    collect_serving_logs()

    # what the answers, the challenger's own predictions and the labels say, counted here
    assert {a["model_version"] for a in answers} == {champion.model_version}
    served = [a["class_name"] for a in answers]
    shadowed = score_frame(load_model(challenger.model_version)[0], frame, SPEC).class_names()
    truth = list(frame[SPEC.target].astype(str))
    right = [(s == t, h == t) for s, h, t in zip(served, shadowed, truth, strict=True)]
    expected = {"pairs": 302, "labelled": labelled,
                "agreeing": sum(s == h for s, h in zip(served, shadowed, strict=True))
                + 2 * (repeated[0]["class_name"] == shadowed[0]),
                "champion_only": sum(a and not b for a, b in right[:labelled]),
                "challenger_only": sum(b and not a for a, b in right[:labelled]),
                "both_right": sum(a and b for a, b in right[:labelled])}

    with connect(read_only=True) as con:
        counts = run_report(con, "ab_shadow", {"dataset": DATASET})
    assert len(counts) == 1
    row = counts.iloc[0]
    assert (row["champion"], row["challenger"]) == (champion.model_version,
                                                     challenger.model_version)
    assert {k: int(row[k]) for k in expected} == expected

    report = write_ab_report(DATASET)
    verdict = report.shadow.iloc[0]
    assert verdict["winner"] == "challenger" and verdict["p_value"] < 0.05
    assert verdict["challenger_accuracy"] > verdict["champion_accuracy"]
    text = report.markdown_path.read_text()
    assert f"**{challenger.model_version} vs {champion.model_version}**: the challenger is " \
           "significantly better" in text
    assert "No canary" in text and report.html_path.read_text().startswith("<!DOCTYPE html>")

    assert_the_cli_says_so(challenger.model_version, champion.model_version)

    gate = shadow_evidence(DATASET, champion.model_version, challenger.model_version)
    assert gate is not None and gate.winner == "challenger"
    assert gate.p_value == pytest.approx(verdict["p_value"])
    assert shadow_evidence(DATASET, challenger.model_version, champion.model_version) is None
    judged = validate(DATASET, challenger.model_version, night="2026-11-20")
    assert {c.name: c.passed for c in judged.checks}["shadow"]
    with connect(read_only=True) as con:
        recorded = json.loads(con.execute("SELECT reasons FROM validations").fetchone()[0])
    assert recorded == judged.reasons and SHADOW_EVIDENCE + gate.sentence() in recorded

    page = AppTest.from_file(str(app_path()), default_timeout=120)
    page.run()
    page.switch_page("views/ab.py").run()
    assert not page.exception, [e.message for e in page.exception]
    lines = "\n".join(m.value for m in page.markdown)
    assert f"{challenger.model_version} vs {champion.model_version}: the challenger is " \
           "significantly better" in lines
    shown = {m.label: m.value for m in page.metric}
    assert shown["Shadow pairs"] == "302" and shown["Labelled shadow pairs"] == str(labelled)
    assert len(page.get("plotly_chart")) == 1


def overnight(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("overnight") or str(Path(sys.executable).parent / "overnight")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))


def assert_the_cli_says_so(challenger: str, champion: str) -> None:
    out = overnight("ab", "--dataset", DATASET)
    assert out.returncode == 0, out.stderr
    assert f"shadow {challenger} vs {champion}: the challenger is significantly better" \
        in out.stdout
    out = overnight("report", "ab_shadow", "-p", f"dataset={DATASET}", "-p",
                    "start=2000-01-01", "-f", "csv")
    assert out.returncode == 0 and f"{DATASET},{champion},{challenger}," in out.stdout, out
    out = overnight("ab", "--dataset", "nope")
    assert out.returncode == 1 and "unknown dataset 'nope'" in out.stderr
    assert "Traceback" not in out.stderr


def keys(count: int) -> list[str]:
    """Routing keys whose first and last go to the challenger at a share of one half, so that
    the champion's answers all fall within the canary's period."""
    found = [f"client-{i}" for i in range(count)]
    to_challenger = [k for k in (f"edge-{i}" for i in range(100))
                     if routed_to_challenger(k, 0.5)]
    return [to_challenger[0], *found[1:-1], to_challenger[1]]


def test_canary_verdict_of_real_traffic(pair: tuple[ModelVersion, ModelVersion]) -> None:
    champion, challenger = pair
    frame = sample(DATASET, 400, seed=22).reset_index(drop=True)
    answers: list[dict[str, Any]] = []
    with serving(DatasetTraffic(canary_share=0.5)) as client:
        for i, key in enumerate(keys(len(frame) // 10)):
            answers += predict(client, frame.iloc[10 * i:10 * i + 10], key)
        send_labels(client, answers, frame[SPEC.target])
    collect_serving_logs()

    truth = list(frame[SPEC.target].astype(str))
    arms = {alias: [a["class_name"] == t for a, t in zip(answers, truth, strict=True)
                    if a["alias"] == alias] for alias in ("champion", "challenger")}
    assert all(len(arm) >= 100 for arm in arms.values())
    with connect(read_only=True) as con:
        found = canary_verdicts(con, DATASET)
        assert run_report(con, "ab_shadow", {"dataset": DATASET}).empty   # shadow was off
    assert len(found) == 1
    row = found.iloc[0]
    assert (row["champion"], row["challenger"]) == (champion.model_version,
                                                     challenger.model_version)
    for alias, arm in arms.items():
        assert (row[f"{alias}_labelled"], row[f"{alias}_correct"]) == (len(arm), sum(arm))
    assert row["winner"] == "challenger" and row["ci_low"] > 0
    assert row["ci_low"] < row["difference"] < row["ci_high"]
    assert row["difference"] == pytest.approx(sum(arms["challenger"]) / len(arms["challenger"])
                                              - sum(arms["champion"]) / len(arms["champion"]))
    text = write_ab_report(DATASET).markdown_path.read_text()
    assert "No shadow pair" in text and "95% CI" in text


def test_an_unknown_dataset_is_refused_by_name(warehouse_path: Path) -> None:
    from monitoring.ab_report import UnknownDatasetError

    with pytest.raises(UnknownDatasetError, match=r"unknown dataset '\.\./etc'"):
        write_ab_report("../etc")
