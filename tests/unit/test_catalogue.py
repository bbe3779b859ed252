"""Catalogue entries and imbalance strategies, fitted for real on small generated data."""

from __future__ import annotations

from datetime import date

import numpy as np
import optuna
import pandas as pd
import pytest
from imblearn import FunctionSampler
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_score

from models.data.generators import customer, medical
from models.data.spec import feature_frame
from models.learning.catalogue import (
    CATALOGUE,
    UnknownAlgorithmError,
    algorithms_for,
    build_model,
    get_algorithm,
)
from models.learning.fit import split_data
from models.learning.imbalance import (
    IMBALANCE_STRATEGIES,
    CostSensitiveClassifier,
    ThresholdTunedClassifier,
    tune_class_weights,
)

DAY = date(2026, 7, 1)


def _xy(gen, n: int = 400, seed: int = 1):
    frame = gen.generate(DAY, n, seed)
    return feature_frame(frame, gen.SPEC), frame[gen.SPEC.target]


@pytest.mark.parametrize("gen", [customer, medical], ids=lambda g: g.DATASET)
@pytest.mark.parametrize("algorithm", algorithms_for("tabular"))
def test_every_tabular_entry_fits_and_predicts(gen, algorithm: str) -> None:
    x, y = _xy(gen)
    model = build_model(gen.SPEC, algorithm, seed=0).fit(x, y)
    proba = model.predict_proba(x.head(7))
    assert proba.shape == (7, len(gen.CLASSES))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(x)) <= set(gen.CLASSES)


@pytest.mark.parametrize("algorithm", algorithms_for("tabular"))
def test_search_spaces_build_valid_models(algorithm: str) -> None:
    x, y = _xy(customer, 200)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = get_algorithm(algorithm).search_space(trial)
    build_model(customer.SPEC, algorithm, params).fit(x, y)


@pytest.mark.parametrize("strategy", IMBALANCE_STRATEGIES)
def test_every_imbalance_strategy_fits(strategy: str) -> None:
    x, y = _xy(medical, 500)
    model = build_model(medical.SPEC, "logistic_regression", imbalance=strategy).fit(x, y)
    assert len(model.predict(x.head(5))) == 5


def test_raw_frame_with_missing_infinite_and_unseen_values() -> None:
    x, y = _xy(customer)
    model = build_model(customer.SPEC, "random_forest").fit(x, y)
    odd = x.head(4).copy()
    odd.loc[odd.index[0], "age"] = np.nan
    odd.loc[odd.index[1], "annual_income"] = np.inf
    odd.loc[odd.index[2], "region"] = "atlantis"
    odd.loc[odd.index[3], "gender"] = None
    assert np.isfinite(model.predict_proba(odd)).all()


def test_unknown_names_are_refused_clearly() -> None:
    with pytest.raises(UnknownAlgorithmError, match="unknown algorithm 'xgb'"):
        build_model(customer.SPEC, "xgb")
    with pytest.raises(UnknownAlgorithmError, match="knn takes no class weights"):
        build_model(customer.SPEC, "knn", imbalance="class_weight")
    with pytest.raises(Exception, match="unknown imbalance strategy 'magic'"):
        build_model(customer.SPEC, "knn", imbalance="magic")
    assert {"logistic_regression", "random_forest", "gradient_boosting", "svm", "knn",
            "dummy"} <= set(CATALOGUE)


def test_resampling_only_ever_sees_training_folds() -> None:
    x, y = _xy(medical, 600)
    seen: list[int] = []

    def record(features, labels):
        seen.append(len(labels))
        return features, labels

    model = build_model(medical.SPEC, "logistic_regression", imbalance="smote")
    model.set_params(resample=FunctionSampler(func=record, validate=False))
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    cross_val_score(model, x, y, cv=folds, scoring="accuracy")
    train_sizes = [len(train) for train, _ in folds.split(x, y)]
    assert seen == train_sizes            # once per fit, on the training fold only
    seen.clear()
    fitted = build_model(medical.SPEC, "logistic_regression", imbalance="smote").fit(x, y)
    assert len(fitted.predict_proba(x.head(50))) == 50   # no resampling at prediction time


def test_threshold_tuning_improves_targeted_class_on_validation() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=3000, p=[0.7, 0.25, 0.05])
    proba = rng.dirichlet(np.ones(3), size=3000)
    proba[np.arange(3000), y] += 0.6          # informative...
    proba[:, 0] += 0.5                        # ...but biased toward the majority class
    proba /= proba.sum(axis=1, keepdims=True)
    before = f1_score(y, proba.argmax(1), labels=[2], average=None)[0]
    weights = tune_class_weights(proba, y)
    after = f1_score(y, (proba * weights).argmax(1), labels=[2], average=None)[0]
    assert after > before + 0.05
    targeted = tune_class_weights(proba, y, recall_targets=np.array([np.nan, np.nan, 0.9]))
    recall = ((proba * targeted).argmax(1)[y == 2] == 2).mean()
    assert recall >= 0.9


def test_threshold_classifier_is_a_proper_estimator() -> None:
    x, y = _xy(medical, 600)
    model = build_model(medical.SPEC, "logistic_regression", imbalance="threshold_f1")
    assert isinstance(model, ThresholdTunedClassifier)
    model.fit(x, y)
    proba = model.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (model.classes_[proba.argmax(1)] == model.predict(x)).all()


def test_cost_sensitive_decision_prefers_the_expensive_miss() -> None:
    x, y = _xy(medical, 800)
    plain = build_model(medical.SPEC, "logistic_regression").fit(x, y)
    costly = build_model(medical.SPEC, "logistic_regression", imbalance="cost_sensitive").fit(x, y)
    assert isinstance(costly, CostSensitiveClassifier)
    rare = "Very Rare Disease D"
    assert (costly.predict(x) == rare).sum() >= (plain.predict(x) == rare).sum()
    np.testing.assert_allclose(costly.predict_proba(x), plain.predict_proba(x))


def test_split_is_stratified_and_deterministic() -> None:
    frame = medical.generate(DAY, 1000, 3)
    a, b = split_data(frame, medical.SPEC, seed=4), split_data(frame, medical.SPEC, seed=4)
    pd.testing.assert_frame_equal(a.x_test, b.x_test)
    shares = a.y_test.value_counts(normalize=True)
    assert shares["Very Rare Disease D"] == pytest.approx(
        frame.diagnosis.value_counts(normalize=True)["Very Rare Disease D"], abs=0.01)
