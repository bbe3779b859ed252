"""SHAP explanations on real small champions in a real data home: they add up to the model's
own output, the API (`?explain=true`) and `overnight predict --explain` give the same
explanation of the same record, and a text record is explained by words of its text."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.data.datasets import builtin
from models.data.spec import feature_frame
from models.evaluation.shap_values import WORD, ShapExplainer
from models.learning.fit import make_model
from models.serving.app import create_app
from models.serving.config import ServingConfig
from tests.support.serving_support import data_home, records, register_champion, sample

OVERNIGHT = str(Path(sys.executable).parent / "overnight")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A logistic-regression champion of customer and a naive Bayes one of news, served."""
    home = tmp_path_factory.mktemp("shap") / "home"
    with data_home(home, OVERNIGHT_LOCK_TIMEOUT_SECONDS="20"):
        register_champion("customer")
        register_champion("news", algorithm="naive_bayes")
        app = create_app(ServingConfig(datasets=["customer", "news"], background=False))
        yield {"client": app.test_client(), "store": app.extensions["overnight"]["store"],
               "home": home, "env": {**os.environ}}


def _explained(client: Any, dataset: str, body: Any) -> list[dict[str, Any]]:
    response = client.post(f"/v1/datasets/{dataset}/predict?explain=true", json=body)
    assert response.status_code == 200, response.json
    return response.json["predictions"]


def test_linear_shap_values_and_base_sum_to_the_margin_of_the_predicted_class(served) -> None:
    champion = served["store"].get("customer")
    frame = feature_frame(pd.DataFrame(records("customer", 8, seed=3)), champion.spec)
    frame.loc[2, "annual_income"] = None                 # imputed inside the pipeline
    predictions = _explained(served["client"], "customer",
                             json.loads(frame.to_json(orient="records")))
    classifier = champion.model.named_steps["classify"]
    margins = classifier.decision_function(
        champion.model.named_steps["preprocess"].transform(frame))
    labels = [str(c) for c in classifier.classes_]
    for r, prediction in enumerate(predictions):
        explanation = prediction["explanation"]
        assert explanation["method"] == "shap:linear"
        assert explanation["predicted_class"] == prediction["class_name"]
        assert {c["feature"] for c in explanation["contributions"]} == \
            set(champion.spec.feature_names)          # one-hot columns summed back
        total = explanation["base_value"] + sum(c["contribution"]
                                                for c in explanation["contributions"])
        margin = margins[r, labels.index(prediction["class_name"])]
        assert total == pytest.approx(margin, abs=1e-6)
        assert explanation["output_value"] == pytest.approx(margin, abs=1e-6)


def test_api_and_overnight_predict_explain_give_the_same_explanation(served, tmp_path) -> None:
    rows = records("customer", 4, seed=5)
    api = _explained(served["client"], "customer", rows)
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    env = {**served["env"], "OVERNIGHT_HOME": str(served["home"]),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([OVERNIGHT, "predict", "--dataset", "customer", "--file", str(source),
                           "--out", str(out), "--explain", "--no-log"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    batch = pd.read_csv(out)
    assert len(batch) == len(api)
    for answer, (_, row) in zip(api, batch.iterrows(), strict=True):
        offline = json.loads(row["explanation"])
        online = answer["explanation"]
        assert offline["predicted_class"] == online["predicted_class"] == row["predicted_class"]
        assert [c["feature"] for c in offline["contributions"]] == \
            [c["feature"] for c in online["contributions"]]
        assert [c["contribution"] for c in offline["contributions"]] == pytest.approx(
            [c["contribution"] for c in online["contributions"]], abs=1e-9)
        assert offline["base_value"] == pytest.approx(online["base_value"], abs=1e-9)


def _words(record: dict[str, Any]) -> set[str]:
    """Every token of the record's text (letters and digits, lower case)."""
    return {w.lower() for column in ("headline", "body")
            for w in re.findall(r"\w+", str(record[column] or ""))}


def test_a_text_records_top_contributions_are_words_of_its_text(served) -> None:
    rows = records("news", 3, seed=9)
    for record, prediction in zip(rows, _explained(served["client"], "news", rows),
                                  strict=True):
        explanation = prediction["explanation"]
        assert explanation["predicted_class"] == prediction["class_name"]
        toward = explanation["toward_predicted"]
        assert len(toward) >= 3
        assert all(e["contribution"] > 0 for e in toward)
        for entry in [*toward, *explanation["against_predicted"]]:
            assert set(entry["word"].split()) <= _words(record), entry   # n-grams too
            assert entry["column"] in ("headline", "body")


def test_model_agnostic_text_shap_names_words_of_the_article_and_adds_up() -> None:
    spec = builtin("news").spec
    frame = sample("news", 300, 2)
    model = make_model(spec, "random_forest", {"n_estimators": 30}, seed=0)
    model.fit(frame[spec.feature_names], frame[spec.target])
    explainer = ShapExplainer(model, spec, frame.head(50))
    assert explainer.kind == "permutation"
    article = records("news", 1, seed=4)[0]
    [explanation] = explainer.explain(pd.DataFrame([article]))
    proba = model.predict_proba(pd.DataFrame([article])[spec.feature_names])[0]
    assert explanation["predicted_class"] == str(model.classes_[int(np.argmax(proba))])
    assert explanation["toward_predicted"]
    assert all(WORD.fullmatch(e["word"]) and e["word"] in _words(article)
               for e in explanation["toward_predicted"])
    # every word of the article at most MAX_WORDS: the values add up to the probability
    assert explanation["output_value"] == pytest.approx(explanation["probability"], abs=1e-6)
    [again] = ShapExplainer(model, spec, frame.head(50)).explain(pd.DataFrame([article]))
    assert again == explanation                       # deterministic with the seed


@pytest.mark.parametrize("algorithm", ["random_forest", "gradient_boosting"])
def test_tree_shap_adds_up_to_the_explained_output(algorithm: str) -> None:
    spec = builtin("medical").spec
    frame = sample("medical", 400, 3)
    model = make_model(spec, algorithm, None, seed=0)
    model.fit(frame[spec.feature_names], frame[spec.target])
    explainer = ShapExplainer(model, spec, frame.head(100))
    assert explainer.kind == "tree"
    rows = frame.iloc[200:204][spec.feature_names]
    proba = model.predict_proba(rows)
    for r, explanation in enumerate(explainer.explain(rows)):
        assert explanation["predicted_class"] == str(model.classes_[int(np.argmax(proba[r]))])
        total = explanation["base_value"] + sum(c["contribution"]
                                                for c in explanation["contributions"])
        assert total == pytest.approx(explanation["output_value"], abs=1e-6)
        if algorithm != "gradient_boosting":         # probability outputs (boosting: log-odds)
            assert total == pytest.approx(explanation["probability"], abs=1e-6)
    importance = explainer.global_importance(frame)
    assert {row["feature"] for row in importance} == set(spec.feature_names)
    assert importance == sorted(importance, key=lambda row: -row["importance"])


def test_the_model_report_has_a_shap_importance_section(tmp_path) -> None:
    from models.evaluation.metrics import evaluate
    from models.reports.model_report import build_model_report

    spec = builtin("customer").spec
    frame = sample("customer", 500, 4)
    train, test = frame.iloc[:350], frame.iloc[350:]
    model = make_model(spec, "logistic_regression", None, seed=0)
    model.fit(train[spec.feature_names], train[spec.target])
    X, y = test[spec.feature_names], test[spec.target]
    build_model_report(spec=spec, model=model, algorithm="logistic_regression",
                       metrics=evaluate(y, model.predict_proba(X), spec.classes),
                       X_test=X, y_test=y, out_dir=tmp_path)
    text = (tmp_path / "report.md").read_text()
    section = text.split("## SHAP importance", 1)[1].split("\n## ", 1)[0]
    assert "shap:linear" in section and "margin" in section
    ranked = [line.split("`")[1] for line in section.splitlines() if line.startswith("| ")
              and "`" in line]
    assert set(ranked) == set(spec.feature_names)     # every input column, one-hots summed
    expected = ShapExplainer(model, spec, X).global_importance(X)
    assert ranked == [row["feature"] for row in expected]
