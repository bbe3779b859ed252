"""The gate's declared targets (policy file, per class where per class) and its baseline rule
(a challenger must beat the majority class significantly), on small fitted models and on
predictions built to miss one target at a time."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.data.generators import customer, medical
from models.data.spec import feature_frame
from models.evaluation.metrics import evaluate
from models.learning.catalogue import build_model
from monitoring.gate import (
    GateConfig,
    GateError,
    check_baseline,
    check_targets,
    gate_config_for,
    judge,
)
from monitoring.policy import POLICY_FILE, load_policies

DAY = date(2026, 9, 1)
RARE = ("Rare Disease C", "Very Rare Disease D")


def _fit(gen, n: int, seed: int, algorithm: str = "logistic_regression",
         imbalance: str = "class_weight"):
    frame = gen.generate(DAY, n, seed)
    return build_model(gen.SPEC, algorithm, imbalance=imbalance).fit(
        feature_frame(frame, gen.SPEC), frame[gen.SPEC.target].to_numpy())


@pytest.fixture(scope="module")
def medical_holdout() -> pd.DataFrame:
    return medical.generate(date(2026, 9, 2), 2000, 99)


@pytest.fixture(scope="module")
def medical_model():
    return _fit(medical, 3000, 2)


def _metrics_of(truth: np.ndarray, predicted: np.ndarray) -> dict:
    classes = list(medical.SPEC.classes)
    proba = np.eye(len(classes))[[classes.index(p) for p in predicted]]
    return evaluate(pd.Series(truth), proba, classes, y_pred=predicted)


def _miss(truth: np.ndarray, name: str, share: float, into: str) -> np.ndarray:
    """Perfect predictions except `share` of class `name`, predicted as `into`."""
    predicted = truth.copy()
    rows = np.flatnonzero(truth == name)
    predicted[rows[: round(share * len(rows))]] = into
    return predicted


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_text(text)
    return path


def test_shipped_targets_live_in_the_policy_file() -> None:
    medical_targets = gate_config_for("medical", POLICY_FILE).targets
    assert {(t.metric, t.class_name, t.above) for t in medical_targets} == {
        ("f1", "every", 0.75), ("sensitivity", RARE[0], 0.90), ("sensitivity", RARE[1], 0.90)}
    assert [(t.metric, t.above) for t in gate_config_for("customer", POLICY_FILE).targets] == [
        ("accuracy", 0.80)]
    assert [(t.metric, t.above) for t in gate_config_for("news", POLICY_FILE).targets] == [
        ("accuracy", 0.85)]
    assert gate_config_for("someone_s_table", POLICY_FILE).targets == ()
    assert load_policies(POLICY_FILE)["medical"].max_f1_drop == 0.03   # retraining keys intact


def test_refuses_a_first_model_no_better_than_the_dummy() -> None:
    holdout = customer.generate(date(2026, 9, 3), 600, 5)
    no_targets = GateConfig()                    # a user's dataset declares none
    dummy = _fit(customer, 600, 1, algorithm="dummy", imbalance="none")
    refused = judge(customer.SPEC, dummy, None, holdout, no_targets)
    baseline = next(c for c in refused.checks if c.name == "baseline")
    assert not refused.passed and not baseline.passed
    assert "not significantly better than the majority class" in baseline.detail
    assert baseline.evidence["accuracy"] == pytest.approx(baseline.evidence["dummy_accuracy"])
    assert "no targets declared for customer" in next(
        c.detail for c in refused.checks if c.name == "targets")
    real = judge(customer.SPEC, _fit(customer, 600, 1), None, holdout, no_targets)
    assert real.passed, real.reasons
    assert next(c for c in real.checks if c.name == "baseline").evidence["mcnemar"][
        "better"] == "a"


def test_baseline_needs_significance_not_just_a_better_figure() -> None:
    truth = pd.Series(["a"] * 14 + ["b"] * 6)
    barely = np.array(["a"] * 14 + ["b"] + ["a"] * 5)          # one row better than dummy...
    check = check_baseline(truth, barely, GateConfig())
    assert check.evidence["accuracy"] > check.evidence["dummy_accuracy"] == 0.7
    assert not check.passed                                     # ...too few rows to prove it


def test_refuses_a_medical_challenger_under_f1_on_one_class(medical_holdout) -> None:
    truth = medical_holdout.diagnosis.astype(str).to_numpy()
    metrics = _metrics_of(truth, _miss(truth, "Common Disease B", 0.45, "Healthy"))
    check = check_targets(medical.SPEC, metrics, gate_config_for("medical", POLICY_FILE))
    assert not check.passed
    assert "f1 of Common Disease B 0." in check.detail and "not above 0.75" in check.detail
    assert check.evidence["f1 of Common Disease B"]["passed"] is False
    assert all(check.evidence[f"f1 of {c}"]["passed"] for c in medical.SPEC.classes
               if c not in ("Common Disease B", "Healthy"))


@pytest.mark.parametrize("rare", RARE)
def test_refuses_a_rare_class_under_sensitivity(medical_holdout, rare: str) -> None:
    truth = medical_holdout.diagnosis.astype(str).to_numpy()
    metrics = _metrics_of(truth, _miss(truth, rare, 0.15, "Common Disease A"))
    assert metrics["per_class"][rare]["f1"] > 0.75            # F1 alone would let it through
    check = check_targets(medical.SPEC, metrics, gate_config_for("medical", POLICY_FILE))
    assert not check.passed
    value = check.evidence[f"sensitivity of {rare}"]["value"]
    assert value == pytest.approx(0.85, abs=0.01)
    assert f"missed sensitivity of {rare} {value:.3f} not above 0.9" in check.detail
    met = check_targets(medical.SPEC, _metrics_of(truth, _miss(truth, rare, 0.05,
                                                               "Common Disease A")),
                        gate_config_for("medical", POLICY_FILE))
    value = met.evidence[f"sensitivity of {rare}"]["value"]
    assert met.passed and f"sensitivity of {rare} {value:.3f} > 0.9" in met.detail


def test_passes_a_medical_model_that_meets_every_target(medical_holdout,
                                                        medical_model) -> None:
    result = judge(medical.SPEC, medical_model, None, medical_holdout,
                   gate_config_for("medical", POLICY_FILE))
    assert result.passed, result.reasons
    targets = next(c for c in result.checks if c.name == "targets")
    assert targets.detail.startswith("every target met: ")
    for name in medical.SPEC.classes:                       # each target named with its value
        value = targets.evidence[f"f1 of {name}"]["value"]
        assert f"f1 of {name} {value:.3f} > 0.75" in targets.detail
    for name in RARE:
        assert targets.evidence[f"sensitivity of {name}"]["value"] > 0.90


def test_targets_changed_in_the_policy_file_change_the_verdict(
        medical_holdout, medical_model, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    strict = _write(tmp_path, "medical:\n  targets:\n"
                    "    - {metric: sensitivity, class: Healthy, above: 0.995}\n"
                    "    - {metric: accuracy, above: 0.5}\n")
    monkeypatch.setenv("OVERNIGHT_POLICY_FILE", str(strict))   # what `validate` reads
    refused = judge(medical.SPEC, medical_model, None, medical_holdout)
    assert not refused.passed
    assert any(r.startswith("targets: missed sensitivity of Healthy 0.") and "accuracy 0." in r
               for r in refused.reasons), refused.reasons
    strict.write_text("default:\n  max_f1_drop: 0.05\n")     # no targets: baseline rule only
    assert judge(medical.SPEC, medical_model, None, medical_holdout).passed


def test_a_wrong_target_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GateError, match=r"policies\.yaml \(news\): target 1: unknown metric "
                                        r"'acuracy'; known: accuracy"):
        gate_config_for("news", _write(tmp_path, "news:\n  targets:\n"
                                       "    - {metric: acuracy, above: 0.8}\n"))
    with pytest.raises(GateError, match=r"target 1: above: Input should be less than or equal"):
        gate_config_for("news", _write(tmp_path, "news:\n  targets:\n"
                                       "    - {metric: accuracy, above: 85}\n"))
    typo = gate_config_for("medical", _write(tmp_path, "medical:\n  targets:\n"
                                             "    - {metric: f1, class: Rare C, above: 0.5}\n"))
    metrics = _metrics_of(np.array(["Healthy", "Rare Disease C"]),
                          np.array(["Healthy", "Rare Disease C"]))
    check = check_targets(medical.SPEC, metrics, typo)
    assert not check.passed and "'Rare C' is not a class of medical" in check.detail


def test_a_challenger_tied_with_the_champion_within_noise_passes(medical_holdout,
                                                                 medical_model) -> None:
    """`not significantly worse than the champion`: a slightly lower macro F1 that McNemar
    cannot tell apart passes (within the tolerance); a significantly worse one does not."""
    tied, worse = _fit(medical, 3000, 4), _fit(medical, 3000, 3)
    no_targets = GateConfig()

    def comparison(challenger, config: GateConfig):
        result = judge(medical.SPEC, challenger, medical_model, medical_holdout, config)
        return next(c for c in result.checks if c.name == "comparison")

    check = comparison(tied, no_targets)
    gap = check.evidence["champion_f1_macro"] - check.evidence["f1_macro"]
    assert 0 < gap < no_targets.f1_tolerance and check.evidence["mcnemar"]["better"] is None
    assert check.passed, check.detail
    assert not comparison(tied, GateConfig(f1_tolerance=0)).passed
    refused = comparison(worse, no_targets)
    assert not refused.passed and "the champion is significantly better" in refused.detail
