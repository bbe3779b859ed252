"""Tests of models.evaluation.metrics: metrics against scikit-learn and hand-worked cases."""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from models.evaluation.metrics import (
    EvaluationError,
    cost_sensitive_predict,
    coverage_curve,
    evaluate,
    expected_calibration_error,
    predict_with_review,
    save_plots,
)

CLASSES = ("a", "b", "c")
# Six rows worked by hand: predicted a, b, b, c, c, b against true a, a, b, b, c, c.
TINY_TRUE = ["a", "a", "b", "b", "c", "c"]
TINY_PROBA = np.array(
    [
        [0.7, 0.2, 0.1],  # a -> a  correct, confidence 0.7
        [0.3, 0.6, 0.1],  # a -> b  wrong,   confidence 0.6
        [0.1, 0.8, 0.1],  # b -> b  correct, confidence 0.8
        [0.2, 0.3, 0.5],  # b -> c  wrong,   confidence 0.5
        [0.1, 0.2, 0.7],  # c -> c  correct, confidence 0.7
        [0.1, 0.5, 0.4],  # c -> b  wrong,   confidence 0.5
    ]
)
TINY_COSTS = ((0.0, 1.0, 2.0), (1.0, 0.0, 1.0), (5.0, 3.0, 0.0))


def _random_case(n: int = 300, k: int = 4, seed: int = 0) -> tuple[list[str], np.ndarray, tuple]:
    rng = np.random.default_rng(seed)
    classes = tuple(f"class_{i}" for i in range(k))
    true_idx = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), true_idx] += 1.0  # better than chance, far from perfect
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return [classes[i] for i in true_idx], proba, classes


def _has_nan(value: object) -> bool:
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return isinstance(value, float) and math.isnan(value)


# --------------------------------------------------------------------------- evaluate


def test_tiny_case_matches_hand_computation() -> None:
    result = evaluate(
        TINY_TRUE, TINY_PROBA, CLASSES, cost_matrix=TINY_COSTS, confidence_threshold=0.6
    )
    assert result["n"] == 6
    assert result["classes"] == ["a", "b", "c"]
    assert result["accuracy"] == pytest.approx(3 / 6)
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 1, 1], [0, 1, 1]]
    # Specificity = TN / (TN + FP), one-vs-rest; 4 rows are not of each class.
    # a: nothing else predicted a -> 4/4; b: rows 1 and 5 wrongly b -> 2/4; c: row 3 -> 3/4.
    per_class = result["per_class"]
    assert per_class["a"]["specificity"] == pytest.approx(1.0)
    assert per_class["b"]["specificity"] == pytest.approx(0.5)
    assert per_class["c"]["specificity"] == pytest.approx(0.75)
    assert [per_class[c]["precision"] for c in CLASSES] == pytest.approx([1.0, 1 / 3, 1 / 2])
    assert [per_class[c]["recall"] for c in CLASSES] == pytest.approx([0.5, 0.5, 0.5])
    assert [per_class[c]["sensitivity"] for c in CLASSES] == pytest.approx([0.5, 0.5, 0.5])
    assert [per_class[c]["support"] for c in CLASSES] == [2, 2, 2]
    # Costs of the errors: a->b 1, b->c 1, c->b 3.
    assert result["total_cost"] == pytest.approx(5.0)
    assert result["mean_cost"] == pytest.approx(5 / 6)
    # Worst case: 2 per a row, 1 per b row, 5 per c row -> 4 + 2 + 10 = 16.
    assert result["cost_sensitive_accuracy"] == pytest.approx(1 - 5 / 16)
    # Majority baseline: a tie, so the first class a: costs 0 + 0 + 1 + 1 + 5 + 5 = 12.
    assert result["profit_score"] == pytest.approx((12 - 5) / 12)
    # Review below 0.6: rows 3 and 5; of the other four, rows 0, 2 and 4 are right.
    assert result["review_share"] == pytest.approx(2 / 6)
    assert result["accuracy_when_confident"] == pytest.approx(3 / 4)


def test_metrics_match_scikit_learn() -> None:
    y_true, proba, classes = _random_case()
    result = evaluate(y_true, proba, classes)
    y_pred = [classes[i] for i in proba.argmax(axis=1)]
    labels = list(classes)

    assert result["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert result["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        assert result[f"precision_{average}"] == pytest.approx(p)
        assert result[f"recall_{average}"] == pytest.approx(r)
        assert result[f"f1_{average}"] == pytest.approx(f)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    for i, name in enumerate(classes):
        assert result["per_class"][name]["precision"] == pytest.approx(p[i])
        assert result["per_class"][name]["recall"] == pytest.approx(r[i])
        assert result["per_class"][name]["f1"] == pytest.approx(f[i])
        assert result["per_class"][name]["support"] == s[i]
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    assert result["confusion_matrix"] == matrix.tolist()
    for i, name in enumerate(classes):
        tn = matrix.sum() - matrix[i].sum() - matrix[:, i].sum() + matrix[i, i]
        fp = matrix[:, i].sum() - matrix[i, i]
        assert result["per_class"][name]["specificity"] == pytest.approx(tn / (tn + fp))
    assert result["roc_auc_ovr"] == pytest.approx(
        roc_auc_score(y_true, proba, multi_class="ovr", labels=labels)
    )
    assert result["roc_auc_ovo"] == pytest.approx(
        roc_auc_score(y_true, proba, multi_class="ovo", labels=labels)
    )
    assert result["log_loss"] == pytest.approx(log_loss(y_true, proba, labels=labels))
    onehot = np.array([[float(t == c) for c in classes] for t in y_true])
    assert result["brier_score"] == pytest.approx(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def test_binary_auc_matches_scikit_learn() -> None:
    y_true, proba, classes = _random_case(k=2, seed=3)
    result = evaluate(y_true, proba, classes)
    expected = roc_auc_score([t == classes[1] for t in y_true], proba[:, 1])
    assert result["roc_auc_ovr"] == pytest.approx(expected)
    assert result["roc_auc_ovo"] == pytest.approx(expected)


def test_log_loss_follows_class_order_not_alphabetical_order() -> None:
    # Columns are ("yes", "no"); sorting the names would swap them.
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    result = evaluate(["yes", "no", "no"], proba, ("yes", "no"))
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.4)) / 3
    assert result["log_loss"] == pytest.approx(expected)


def test_brier_and_ece_are_zero_for_confident_correct_predictions() -> None:
    y_true = ["a", "b", "c", "a"]
    proba = np.eye(3)[[0, 1, 2, 0]]
    result = evaluate(y_true, proba, CLASSES)
    assert result["brier_score"] == pytest.approx(0.0)
    assert result["calibration_error"] == pytest.approx(0.0)
    assert result["accuracy"] == 1.0


def test_brier_of_one_row_by_hand() -> None:
    # (0.7 - 1)^2 + 0.2^2 + 0.1^2 = 0.09 + 0.04 + 0.01
    result = evaluate(["a"], [[0.7, 0.2, 0.1]], CLASSES)
    assert result["brier_score"] == pytest.approx(0.14)


def test_ece_is_zero_for_half_confidence_at_half_accuracy() -> None:
    y_true = ["yes", "no"] * 10
    proba = np.full((20, 2), 0.5)  # always predicts "yes" (first column) with confidence 0.5
    result = evaluate(y_true, proba, ("yes", "no"))
    assert result["accuracy"] == pytest.approx(0.5)
    assert result["calibration_error"] == pytest.approx(0.0)


def test_ece_by_hand_with_two_bins() -> None:
    # Bin (0.5, 0.6]: confidence 0.55, accuracy 1/2 -> gap 0.05 over 2 rows.
    # Bin (0.9, 1.0]: confidence 0.95, accuracy 1    -> gap 0.05 over 2 rows.
    correct = np.array([True, False, True, True])
    confidence = np.array([0.55, 0.55, 0.95, 0.95])
    assert expected_calibration_error(correct, confidence, 10) == pytest.approx(0.05)
    # Overconfident: 0.9 confidence, half right -> 0.4.
    assert expected_calibration_error([1, 0], [0.9, 0.9]) == pytest.approx(0.4)


def test_auc_is_none_when_a_class_is_missing() -> None:
    y_true = ["a", "b", "a", "b"]
    proba = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0.4, 0.4, 0.2]]
    result = evaluate(y_true, proba, CLASSES)
    assert result["roc_auc_ovr"] is None
    assert result["roc_auc_ovo"] is None
    assert result["per_class"]["c"]["support"] == 0


def test_auc_is_none_when_only_one_class_present() -> None:
    result = evaluate(["yes", "yes"], [[0.8, 0.2], [0.3, 0.7]], ("yes", "no"))
    assert result["roc_auc_ovr"] is None and result["roc_auc_ovo"] is None


def test_result_is_plain_json_without_nan() -> None:
    y_true = ["a", "a", "b", "b"]  # c missing: AUCs undefined, c's precision zero-division
    proba = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0.4, 0.4, 0.2]]
    result = evaluate(y_true, proba, CLASSES, cost_matrix=TINY_COSTS, confidence_threshold=0.99)
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text) == result
    assert not _has_nan(result)
    assert result["accuracy_when_confident"] is None  # nothing reaches 0.99
    assert result["review_share"] == 1.0
    full = evaluate(TINY_TRUE, TINY_PROBA, CLASSES, cost_matrix=TINY_COSTS)
    json.dumps(full, allow_nan=False)
    assert all(type(v) in (int, float) for v in full["per_class"]["a"].values())


def test_profit_score_is_none_when_baseline_costs_nothing() -> None:
    costs = ((0.0, 1.0), (0.0, 0.0))  # only predicting "no" for a true "yes" costs
    result = evaluate(["yes", "yes"], [[0.9, 0.1], [0.2, 0.8]], ("yes", "no"), cost_matrix=costs)
    assert result["total_cost"] == 1.0
    assert result["profit_score"] is None


def test_bad_inputs_are_rejected_with_a_clear_error() -> None:
    with pytest.raises(EvaluationError, match="not classes: z"):
        evaluate(["a", "z"], [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], CLASSES)
    with pytest.raises(EvaluationError, match="columns"):
        evaluate(["a"], [[0.5, 0.5]], CLASSES)
    with pytest.raises(EvaluationError, match="rows"):
        evaluate(["a", "b"], [[0.5, 0.5, 0.0]], CLASSES)
    with pytest.raises(EvaluationError, match="sum to 1"):
        evaluate(["a"], [[0.5, 0.6, 0.0]], CLASSES)
    with pytest.raises(EvaluationError, match="3 x 3"):
        evaluate(TINY_TRUE, TINY_PROBA, CLASSES, cost_matrix=((0, 1), (1, 0)))


# --------------------------------------------------------------------------- decisions


def test_cost_sensitive_predict_prefers_the_expensive_to_miss_class() -> None:
    # Missing a sick patient costs 10, a false alarm costs 1.
    costs = ((0.0, 1.0), (10.0, 0.0))  # [true][predicted], classes (healthy, sick)
    proba = np.array([[0.7, 0.3], [0.95, 0.05], [0.2, 0.8]])
    # Row 0: argmax says healthy, but expected cost healthy 0.3*10 = 3 > sick 0.7*1 = 0.7.
    # Row 1: healthy 0.05*10 = 0.5 < sick 0.95 -> healthy.
    assert proba.argmax(axis=1).tolist() == [0, 0, 1]
    chosen = cost_sensitive_predict(proba, costs)
    assert isinstance(chosen, np.ndarray)
    assert chosen.tolist() == [1, 0, 1]
    # With symmetric costs it is the argmax.
    assert cost_sensitive_predict(proba, ((0, 1), (1, 0))).tolist() == [0, 0, 1]


def test_predict_with_review_flags_exactly_the_rows_below_threshold() -> None:
    frame = predict_with_review(TINY_PROBA, CLASSES, 0.6)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["predicted_class", "predicted_index", "confidence",
                                   "needs_review"]
    assert frame["predicted_class"].tolist() == ["a", "b", "b", "c", "c", "b"]
    assert frame["predicted_index"].tolist() == [0, 1, 1, 2, 2, 1]
    assert frame["confidence"].tolist() == pytest.approx([0.7, 0.6, 0.8, 0.5, 0.7, 0.5])
    # 0.6 itself is confident enough; only the two 0.5 rows need review.
    assert frame["needs_review"].tolist() == [False, False, False, True, False, True]


def test_coverage_curve_trades_coverage_for_accuracy() -> None:
    y_true, proba, classes = _random_case(seed=1)
    curve = coverage_curve(y_true, proba, classes)
    thresholds = [p["threshold"] for p in curve]
    assert thresholds == pytest.approx([0.05 * i for i in range(20)])
    coverages = [p["coverage"] for p in curve]
    assert all(later <= earlier for earlier, later in itertools.pairwise(coverages))
    assert curve[0]["coverage"] == 1.0
    assert curve[0]["accuracy"] == pytest.approx(evaluate(y_true, proba, classes)["accuracy"])
    json.dumps(curve, allow_nan=False)


def test_coverage_curve_by_hand_and_empty_coverage() -> None:
    curve = coverage_curve(TINY_TRUE, TINY_PROBA, CLASSES, thresholds=[0.6, 0.75, 0.9])
    # >= 0.6: rows 0, 1, 2, 4 (3 right); >= 0.75: row 2 (right); >= 0.9: none.
    assert [p["coverage"] for p in curve] == pytest.approx([4 / 6, 1 / 6, 0.0])
    assert curve[0]["accuracy"] == pytest.approx(3 / 4)
    assert curve[1]["accuracy"] == pytest.approx(1.0)
    assert curve[2]["accuracy"] is None


# --------------------------------------------------------------------------- plots


def test_save_plots_writes_four_pngs(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    y_true, proba, classes = _random_case(n=120, k=3, seed=2)
    paths = save_plots(y_true, proba, classes, tmp_path / "plots", prefix="run1_")
    assert set(paths) == {"confusion_matrix", "roc_curves", "precision_recall_curves",
                          "reliability_diagram"}
    for path in paths.values():
        file = Path(path)
        assert file.name.startswith("run1_") and file.suffix == ".png"
        data = file.read_bytes()
        assert len(data) > 0
        assert data.startswith(b"\x89PNG\r\n\x1a\n")


def test_save_plots_says_matplotlib_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now fails, as if absent
    with pytest.raises(ImportError, match="needs matplotlib"):
        save_plots(TINY_TRUE, TINY_PROBA, CLASSES, tmp_path)


def test_y_pred_overrides_the_argmax_decision() -> None:
    classes = ("a", "b")
    proba = np.array([[0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])
    argmax = evaluate(["b", "b", "b"], proba, classes)
    decided = evaluate(["b", "b", "b"], proba, classes, y_pred=["b", "b", "b"])
    assert argmax["accuracy"] == pytest.approx(1 / 3)
    assert decided["accuracy"] == 1.0
    assert decided["log_loss"] == argmax["log_loss"]  # probabilities are unchanged
