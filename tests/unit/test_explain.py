"""Tests of models.evaluation.explain on a constructed dataset where one column decides the
class."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.data.spec import DatasetSpec, FeatureSpec
from models.evaluation.explain import (
    explain_prediction,
    global_importance,
    native_importance,
    reference_values,
    segment_profiles,
)
from models.learning.catalogue import build_model
from models.learning.imbalance import ThresholdTunedClassifier

SPEC = DatasetSpec(
    name="toy",
    kind="tabular",
    features=(
        FeatureSpec(name="signal", type="numeric"),
        FeatureSpec(name="noise", type="numeric"),
        FeatureSpec(name="colour", type="categorical"),
    ),
    target="label",
    classes=("no", "yes"),
    cost_matrix=((0, 1), (5, 0)),
)
TEXT_SPEC = DatasetSpec(
    name="toy_text",
    kind="tabular",
    features=(FeatureSpec(name="signal", type="numeric"), FeatureSpec(name="note", type="text")),
    target="label",
    classes=("no", "yes"),
)
STRONG_YES = {"signal": 2.5, "noise": 0.0, "colour": "red"}


def toy_data(n: int = 800, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """`signal` decides the label (with a little label noise); `noise` and `colour` do not."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    frame = pd.DataFrame({
        "signal": signal,
        "noise": rng.normal(size=n),
        "colour": rng.choice(["red", "green", "blue"], size=n).astype(object),
    })
    label = np.where(signal + 0.3 * rng.normal(size=n) > 0, "yes", "no").astype(object)
    return frame, label


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    return toy_data()


@pytest.fixture(scope="module")
def models(data: tuple[pd.DataFrame, np.ndarray]) -> dict[str, Any]:
    X, y = data
    fitted = {
        name: build_model(SPEC, name, params).fit(X, y)
        for name, params in (
            ("random_forest", {"n_estimators": 40}),
            ("logistic_regression", None),
            ("knn", None),
        )
    }
    for strategy in ("threshold_f1", "cost_sensitive"):
        fitted[strategy] = build_model(SPEC, "logistic_regression", imbalance=strategy).fit(X, y)
    return fitted


class CountingModel:
    """A fitted model that records the number of rows of every predict_proba call."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls: list[int] = []

    @property
    def classes_(self) -> np.ndarray:
        return self.model.classes_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self.calls.append(len(X))
        return self.model.predict_proba(X)


def test_permutation_importance_ranks_signal_above_noise(data, models) -> None:
    X, y = data
    ranking = global_importance(models["random_forest"], X, y, n_repeats=3, max_rows=400)
    assert ranking[0]["feature"] == "signal"
    assert {r["feature"] for r in ranking} == set(SPEC.feature_names)
    score = {r["feature"]: r["importance"] for r in ranking}
    assert score["signal"] > 0.2 > max(score["noise"], score["colour"])
    assert ranking == global_importance(models["random_forest"], X, y, n_repeats=3, max_rows=400)
    json.dumps(ranking, allow_nan=False)


def test_native_importance_for_trees_and_linear_models_only(models) -> None:
    for name in ("random_forest", "logistic_regression", "threshold_f1"):
        importance = native_importance(models[name])
        assert importance is not None, name
        # signal, noise and three one-hot colours
        assert len(importance) == 5
        assert importance[0]["feature"] == "numeric__signal"
        json.dumps(importance, allow_nan=False)
    assert native_importance(models["knn"]) is None


def test_segment_profiles_add_up_and_serialise(data, models) -> None:
    X, _ = data
    predicted = models["logistic_regression"].predict(X)
    profiles = segment_profiles(X, predicted, SPEC)
    assert list(profiles) == ["no", "yes"]
    assert sum(p["count"] for p in profiles.values()) == len(X)
    assert sum(p["share"] for p in profiles.values()) == pytest.approx(1.0)
    means = {c: p["numeric"]["signal"]["mean"] for c, p in profiles.items()}
    assert means["yes"] > 0 > means["no"]
    assert set(profiles["yes"]["categorical"]["colour"]) == {"red", "green", "blue"}
    json.dumps(profiles, allow_nan=False)


def test_segment_profiles_turn_nan_into_none() -> None:
    X = pd.DataFrame({"signal": [np.nan, 1.0, 2.0], "noise": [0.0, np.inf, 1.0],
                      "colour": ["red", None, "blue"]})
    profiles = segment_profiles(X, ["no", "no", "yes"], SPEC)
    assert profiles["yes"]["count"] == 1
    assert profiles["yes"]["numeric"]["signal"]["std"] is None
    assert profiles["no"]["numeric"]["signal"]["mean"] == 1.0
    assert profiles["no"]["numeric"]["noise"]["max"] == 0.0
    assert profiles["no"]["categorical"]["colour"] == {"red": 0.5}
    json.dumps(profiles, allow_nan=False)


def test_explain_prediction_names_the_deciding_feature_in_one_call(data, models) -> None:
    X, _ = data
    reference = reference_values(X, SPEC)
    assert reference["colour"] in {"red", "green", "blue"}
    model = CountingModel(models["logistic_regression"])
    result = explain_prediction(model, STRONG_YES, reference, SPEC, n=2)
    assert model.calls == [1 + len(SPEC.feature_names)]
    assert result["predicted_class"] == "yes"
    assert result["probability"] > 0.9
    assert len(result["contributions"]) == 2
    top = result["contributions"][0]
    assert top == {"feature": "signal", "value": 2.5, "reference": reference["signal"],
                   "contribution": pytest.approx(top["contribution"])}
    assert top["contribution"] > 0.3
    assert all(c["feature"] in SPEC.feature_names for c in result["contributions"])
    json.dumps(result, allow_nan=False)


def test_explain_prediction_takes_a_one_row_frame(data, models) -> None:
    X, _ = data
    reference = reference_values(X, SPEC)
    model = models["random_forest"]
    from_frame = explain_prediction(model, X.iloc[[7]], reference, SPEC)
    from_dict = explain_prediction(model, X.iloc[7].to_dict(), reference, SPEC)
    assert from_frame == from_dict
    assert from_frame["predicted_class"] == model.predict(X.iloc[[7]])[0]
    assert len(from_frame["contributions"]) == 3
    with pytest.raises(ValueError, match="one row"):
        explain_prediction(model, X.iloc[:2], reference, SPEC)
    with pytest.raises(ValueError, match="colour"):
        explain_prediction(model, {"signal": 1.0, "noise": 0.0}, reference, SPEC)


def test_explain_prediction_through_decision_rule_wrappers(data, models) -> None:
    X, _ = data
    reference = reference_values(X, SPEC)
    wrapped = models["threshold_f1"]
    assert isinstance(wrapped, ThresholdTunedClassifier)
    result = explain_prediction(wrapped, STRONG_YES, reference, SPEC)
    assert result["predicted_class"] == "yes"
    assert result["contributions"][0]["feature"] == "signal"
    json.dumps(result, allow_nan=False)
    # the cost-sensitive decision is not the argmax: the explanation follows the decision
    cost_sensitive = models["cost_sensitive"]
    rows = pd.DataFrame({"signal": np.linspace(-1.0, 0.5, 7), "noise": 0.0, "colour": "red"})
    decided = cost_sensitive.predict(rows)
    most_probable = cost_sensitive.classes_[cost_sensitive.predict_proba(rows).argmax(axis=1)]
    assert (decided != most_probable).any()
    explained = [explain_prediction(cost_sensitive, rows.iloc[[i]], reference, SPEC)
                 for i in range(len(rows))]
    assert [e["predicted_class"] for e in explained] == list(decided)


def test_explain_prediction_leaves_text_features_alone() -> None:
    rng = np.random.default_rng(1)
    X, y = toy_data(300, seed=1)
    X = X[["signal"]].assign(note=rng.choice(["good service", "bad service", "okay visit"], 300))
    model = build_model(TEXT_SPEC, "logistic_regression").fit(X, y)
    counting = CountingModel(model)
    row = {"signal": 2.0, "note": "good service"}
    result = explain_prediction(counting, row, reference_values(X, TEXT_SPEC), TEXT_SPEC)
    assert counting.calls == [2]
    assert [c["feature"] for c in result["contributions"]] == ["signal"]
    importance = native_importance(model)
    assert importance is not None and all(r["feature"].startswith("x") for r in importance)
