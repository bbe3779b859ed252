"""The validation gate on real fitted models and a real warehouse."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from models.data.generators import customer, medical
from models.data.spec import feature_frame
from models.learning.catalogue import build_model
from models.registry.artifacts import HOLDOUT_FILE
from models.registry.versions import aliases, promote, register_model, rollback
from models.reports.production import save_holdout
from monitoring.gate import GateError, check_input_safety, judge, promote_validated, validate
from warehouse import connect

DAY = date(2026, 9, 1)


def _fit(gen, n: int, seed: int, *, shuffle: bool = False, drop: str | None = None,
         algorithm: str = "logistic_regression", imbalance: str = "class_weight"):
    frame = gen.generate(DAY, n, seed)
    if drop:
        frame = frame[frame[gen.SPEC.target] != drop]
    y = frame[gen.SPEC.target].to_numpy()
    if shuffle:
        y = np.random.default_rng(0).permutation(y)
    return build_model(gen.SPEC, algorithm, imbalance=imbalance).fit(
        feature_frame(frame, gen.SPEC), y)


@pytest.fixture(scope="module")
def medical_holdout():
    return medical.generate(date(2026, 9, 2), 2000, 99)


def _reasons(result) -> str:
    return " | ".join(result.reasons)


def test_accepts_a_genuinely_better_challenger(medical_holdout) -> None:
    champion = _fit(medical, 300, 1, algorithm="knn", imbalance="none")
    challenger = _fit(medical, 3000, 2)
    result = judge(medical.SPEC, challenger, champion, medical_holdout)
    assert result.passed, _reasons(result)
    assert result.score == 1.0
    assert {c.name for c in result.checks} == {"targets", "baseline", "rare_classes",
                                               "comparison", "robustness", "fairness",
                                               "input_safety"}


def test_refuses_a_challenger_trained_on_shuffled_labels(medical_holdout) -> None:
    champion = _fit(medical, 2000, 1)
    challenger = _fit(medical, 2000, 2, shuffle=True)
    result = judge(medical.SPEC, challenger, champion, medical_holdout)
    assert not result.passed
    assert "targets" in _reasons(result) and "comparison" in _reasons(result)
    assert "not significantly better than the majority class" in _reasons(result)
    assert "champion is significantly better" in _reasons(result)


def test_refuses_better_on_average_but_losing_a_rare_class(medical_holdout) -> None:
    champion = _fit(medical, 250, 1, algorithm="knn", imbalance="none")
    challenger = _fit(medical, 4000, 2, drop="Very Rare Disease D")
    holdout_x = medical_holdout[medical.SPEC.feature_names]
    truth = medical_holdout.diagnosis.to_numpy()
    assert np.mean(challenger.predict(holdout_x) == truth) > np.mean(
        champion.predict(holdout_x) == truth)                   # better on average...
    result = judge(medical.SPEC, challenger, champion, medical_holdout)
    assert not result.passed                                    # ...and still refused
    assert "Very Rare Disease D is never recognised" in _reasons(result)


def test_first_challenger_without_champion_is_judged_on_its_own(medical_holdout) -> None:
    result = judge(medical.SPEC, _fit(medical, 2000, 2), None, medical_holdout)
    assert result.passed and "comparison" not in {c.name for c in result.checks}


def test_robustness_and_fairness_evidence_present(medical_holdout) -> None:
    result = judge(medical.SPEC, _fit(medical, 2000, 2), None, medical_holdout)
    checks = {c.name: c for c in result.checks}
    assert set(checks["robustness"].evidence) == {"missing_values", "gaussian_noise"}
    assert set(checks["fairness"].evidence["gender"]["recall_by_group"]) == {"female", "male"}


def test_input_safety_catches_a_pipeline_that_crashes_on_nan() -> None:
    frame = customer.generate(DAY, 300, 1)
    numeric = customer.SPEC.features_of_type("numeric")
    fragile = Pipeline([("preprocess", ColumnTransformer([("n", StandardScaler(), numeric)])),
                        ("classify", LogisticRegression(max_iter=500))])
    fragile.fit(frame[customer.SPEC.feature_names], frame.segment)
    check = check_input_safety(customer.SPEC, fragile, frame[customer.SPEC.feature_names])
    assert not check.passed and "crashed on unusual inputs" in check.detail
    robust = _fit(customer, 300, 1)
    assert check_input_safety(customer.SPEC, robust, frame[customer.SPEC.feature_names]).passed


def _register(model, tmp_path: Path, name: str):
    holdout = customer.generate(date(2026, 9, 3), 800, 5)
    path = save_holdout(holdout[customer.SPEC.feature_names], holdout.segment, customer.SPEC,
                        tmp_path / name / HOLDOUT_FILE)
    return register_model(model, customer.SPEC, algorithm="logistic_regression", metrics={},
                          training_batches=[], attachments={HOLDOUT_FILE: path})


def test_validate_records_and_promotion_needs_a_pass(warehouse_path: Path,
                                                     tmp_path: Path) -> None:
    good = _register(_fit(customer, 2000, 1), tmp_path, "a")
    bad = _register(_fit(customer, 2000, 2, shuffle=True), tmp_path, "b")
    promote("customer", good.model_version, reason="first")
    result = validate("customer", bad.model_version, night="2026-09-03")
    assert not result.passed
    with connect(read_only=True) as con:
        row = con.execute("SELECT passed, reasons, champion_version FROM validations").fetchone()
    assert row[0] is False and json.loads(row[1]) == result.reasons
    assert row[2] == good.model_version
    with pytest.raises(GateError, match="no passing validation"):
        promote_validated("customer", bad.model_version, reason="try")
    assert aliases("customer")["champion"] == good.model_version
    better = _register(_fit(customer, 4000, 3), tmp_path, "c")
    assert validate("customer", better.model_version, night="2026-09-03").passed
    assert promote_validated("customer", better.model_version, reason="gate passed") == (
        good.model_version)
    assert rollback("customer", reason="pager") == good.model_version
    assert aliases("customer") == {"champion": good.model_version,
                                   "previous": better.model_version}


def _fragile_to_holes(rows: int) -> tuple[Pipeline, pd.DataFrame, pd.Series]:
    """A model whose one informative column, when missing, is imputed to the class boundary."""
    from sklearn.impute import SimpleImputer
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(3)
    x = pd.DataFrame({"signal": rng.uniform(-1, 1, rows), "noise": rng.normal(size=rows)})
    y = pd.Series(np.where(x.signal > 0, "up", "down"))
    model = Pipeline([("impute", SimpleImputer(strategy="constant", fill_value=0.01)),
                      ("classify", DecisionTreeClassifier(max_depth=2, random_state=0))])
    return model.fit(x, y), x, y


def test_a_robustness_drop_blocks_only_when_it_is_significant() -> None:
    """The same model and the same share of holes: on 8 held-out rows the drop is a couple of
    answers (not significant: passes, with the drop in the evidence); on 400 it is not noise."""
    from models.data.spec import DatasetSpec, FeatureSpec
    from monitoring.gate import GateConfig, check_robustness

    spec = DatasetSpec(name="holes", kind="tabular", target="label", classes=["down", "up"],
                       features=[FeatureSpec(name="signal", type="numeric"),
                                 FeatureSpec(name="noise", type="numeric")])
    config = GateConfig(missing_share=0.5, noise_scale=0.0)
    outcomes = {}
    for rows in (8, 400):
        model, x, y = _fragile_to_holes(rows)
        clean = float(np.mean(model.predict(x) == y.to_numpy()))
        outcomes[rows] = check_robustness(spec, model, x, y, clean, config)
    small, large = outcomes[8], outcomes[400]
    assert small.evidence["missing_values"] < 0.9 and small.passed, small.detail
    assert not large.passed and "McNemar p" in large.detail
    assert large.evidence["missing_values"] < 0.85
