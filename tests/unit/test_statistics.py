"""Model comparison statistics: known answers on constructed cases, and the ranking rules."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from models.evaluation.statistics import (
    DEFAULT_WEIGHTS,
    INTERPRETABILITY,
    corrected_resampled_ttest,
    cv_summary,
    holm_significant,
    mcnemar_test,
    paired_5x2cv_ttest,
    rank_candidates,
)

A = [0.80, 0.82, 0.78, 0.85, 0.81]
B = [0.75, 0.80, 0.76, 0.79, 0.78]


def _plain(value: object) -> None:
    """Results hold only plain Python values (no numpy scalars) and survive JSON."""
    if isinstance(value, dict):
        for item in value.values():
            _plain(item)
    elif isinstance(value, list):
        for item in value:
            _plain(item)
    else:
        assert value is None or type(value) in (bool, int, float, str), (value, type(value))
    json.dumps(value)


# --------------------------------------------------------------------------- cv_summary


def test_cv_summary_written_out_list() -> None:
    result = cv_summary([0.70, 0.80, 0.90])
    assert result["n"] == 3
    assert result["mean"] == pytest.approx(0.80)
    assert result["std"] == pytest.approx(0.10)  # ddof=1: sqrt((0.01 + 0 + 0.01) / 2)
    assert result["min"] == pytest.approx(0.70)
    assert result["max"] == pytest.approx(0.90)
    half = 4.302652729911275 * 0.10 / math.sqrt(3)  # t_{0.975, 2}
    assert result["ci_low"] == pytest.approx(0.80 - half)
    assert result["ci_high"] == pytest.approx(0.80 + half)
    _plain(result)


def test_cv_summary_edge_cases() -> None:
    single = cv_summary([0.5])
    assert single["std"] == 0.0 and single["ci_low"] == single["ci_high"] == 0.5
    with pytest.raises(ValueError):
        cv_summary([])


# --------------------------------------------------------------------------- corrected t-test


def test_corrected_ttest_matches_hand_computation() -> None:
    # d = [0.05, 0.02, 0.02, 0.06, 0.03]: mean 0.036, var(ddof=1) = 0.00132 / 4 = 0.00033
    # correction 1/5 + 20/80 = 0.45
    result = corrected_resampled_ttest(A, B, n_train=80, n_test=20)
    expected_t = 0.036 / math.sqrt(0.45 * 0.00033)
    assert result["statistic"] == pytest.approx(expected_t)
    assert result["p_value"] == pytest.approx(2 * stats.t.sf(expected_t, 4))
    assert result["mean_difference"] == pytest.approx(0.036)
    assert result["alpha"] == 0.05
    _plain(result)


def test_correction_makes_p_larger_than_plain_paired_ttest() -> None:
    corrected = corrected_resampled_ttest(A, B, n_train=80, n_test=20)
    plain = stats.ttest_rel(A, B)
    assert corrected["p_value"] > plain.pvalue
    assert abs(corrected["statistic"]) < abs(plain.statistic)


def test_corrected_ttest_identical_scores_not_significant() -> None:
    result = corrected_resampled_ttest(A, list(A), n_train=80, n_test=20)
    assert result == {
        "statistic": 0.0,
        "p_value": 1.0,
        "mean_difference": 0.0,
        "significant": False,
        "alpha": 0.05,
    }


def test_corrected_ttest_consistent_large_difference_significant() -> None:
    a = [0.90, 0.92, 0.91, 0.93, 0.90, 0.92, 0.91, 0.94, 0.90, 0.92]
    b = [0.60, 0.61, 0.62, 0.60, 0.59, 0.61, 0.60, 0.62, 0.61, 0.60]
    result = corrected_resampled_ttest(a, b, n_train=90, n_test=10)
    assert result["significant"] and result["p_value"] < 0.001
    assert result["statistic"] > 0
    reverse = corrected_resampled_ttest(b, a, n_train=90, n_test=10)
    assert reverse["statistic"] == pytest.approx(-result["statistic"])
    assert reverse["p_value"] == pytest.approx(result["p_value"])


def test_corrected_ttest_alpha_and_validation() -> None:
    result = corrected_resampled_ttest(A, B, n_train=80, n_test=20, alpha=1e-6)
    assert result["alpha"] == 1e-6 and not result["significant"]
    with pytest.raises(ValueError):
        corrected_resampled_ttest(A, B[:3], n_train=80, n_test=20)
    with pytest.raises(ValueError):
        corrected_resampled_ttest([0.5], [0.4], n_train=80, n_test=20)


# --------------------------------------------------------------------------- 5x2cv


@pytest.fixture(scope="module")
def classification() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(
        n_samples=300, n_features=10, n_informative=5, class_sep=1.5, random_state=0
    )
    return X, y


def test_5x2cv_identical_models_not_significant(classification) -> None:
    X, y = classification
    result = paired_5x2cv_ttest(LogisticRegression(), LogisticRegression(), X, y)
    assert result["statistic"] == 0.0
    assert result["p_value"] == 1.0
    assert not result["significant"]
    _plain(result)


def test_5x2cv_clearly_better_model_significant(classification) -> None:
    X, y = classification
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    result = paired_5x2cv_ttest(
        LogisticRegression(), DummyClassifier(), frame, pd.Series(y), scoring="f1_macro"
    )
    assert result["significant"] and result["p_value"] < 0.05
    assert result["statistic"] > 0 and result["mean_difference"] > 0.2
    _plain(result)
    again = paired_5x2cv_ttest(
        LogisticRegression(), DummyClassifier(), frame, pd.Series(y), scoring="f1_macro"
    )
    assert again == result  # deterministic for a given random_state


# --------------------------------------------------------------------------- McNemar


def _predictions(b: int, c: int, both_right: int = 20, both_wrong: int = 5):
    """y_true, pred_a, pred_b with exactly b (a right, b wrong) and c (a wrong, b right)."""
    y = np.ones(b + c + both_right + both_wrong, dtype=int)
    a_right = np.array([1] * b + [0] * c + [1] * both_right + [0] * both_wrong, dtype=bool)
    b_right = np.array([0] * b + [1] * c + [1] * both_right + [0] * both_wrong, dtype=bool)
    return y, np.where(a_right, 1, 0), np.where(b_right, 1, 0)


def test_mcnemar_hand_checked_exact_case() -> None:
    result = mcnemar_test(*_predictions(10, 2))
    assert (result["b"], result["c"]) == (10, 2)
    assert result["method"] == "exact"
    assert result["p_value"] == pytest.approx(stats.binomtest(2, 12).pvalue)
    assert result["statistic"] == 2.0
    assert result["significant"] and result["better"] == "a"
    _plain(result)


def test_mcnemar_chi_square_branch_for_many_discordant_pairs() -> None:
    result = mcnemar_test(*_predictions(10, 30))  # b + c = 40 >= 25
    assert result["method"] == "chi2"
    assert result["statistic"] == pytest.approx((20 - 1) ** 2 / 40)
    assert result["p_value"] == pytest.approx(stats.chi2.sf(19**2 / 40, 1))
    assert result["significant"] and result["better"] == "b"
    _plain(result)


def test_mcnemar_branch_boundary_and_override() -> None:
    assert mcnemar_test(*_predictions(12, 12))["method"] == "exact"  # 24 < 25
    assert mcnemar_test(*_predictions(13, 12))["method"] == "chi2"  # 25
    forced = mcnemar_test(*_predictions(13, 12), exact=True)
    assert forced["method"] == "exact"
    assert forced["p_value"] == pytest.approx(stats.binomtest(12, 25).pvalue)
    assert mcnemar_test(*_predictions(10, 2), exact=False)["method"] == "chi2"


def test_mcnemar_identical_predictions_not_significant() -> None:
    y, pred, _ = _predictions(10, 2)
    result = mcnemar_test(y, pred, pred.copy())
    assert (result["b"], result["c"]) == (0, 0)
    assert result["p_value"] == 1.0
    assert not result["significant"] and result["better"] is None


def test_mcnemar_real_models(classification) -> None:
    X, y = classification
    train, test = slice(0, 150), slice(150, None)
    pred_lr = LogisticRegression().fit(X[train], y[train]).predict(X[test])
    pred_dummy = DummyClassifier().fit(X[train], y[train]).predict(X[test])
    result = mcnemar_test(y[test], pred_dummy, pred_lr)
    assert result["significant"] and result["better"] == "b"
    with pytest.raises(ValueError):
        mcnemar_test(y[test], pred_lr[:-1], pred_dummy)


# --------------------------------------------------------------------------- ranking


def _candidate(name: str, **overrides: float) -> dict:
    base = {
        "name": name,
        "performance": 0.80,
        "cv_std": 0.02,
        "fit_seconds": 1.0,
        "predict_seconds": 0.1,
        "interpretability": 0.5,
        "memory_mb": 10.0,
    }
    base.update(overrides)
    return base


def test_tables() -> None:
    assert sum(DEFAULT_WEIGHTS.values()) == pytest.approx(1.0)
    assert INTERPRETABILITY["dummy"] == 1.0 and INTERPRETABILITY["logistic_regression"] == 0.9


def test_best_on_every_criterion_ranks_first_with_score_one() -> None:
    candidates = [
        _candidate(
            "slow_forest",
            performance=0.70,
            cv_std=0.05,
            fit_seconds=9.0,
            interpretability=0.5,
            memory_mb=200.0,
        ),
        _candidate(
            "champion",
            performance=0.90,
            cv_std=0.01,
            fit_seconds=0.5,
            interpretability=0.9,
            memory_mb=5.0,
        ),
        _candidate(
            "middle",
            performance=0.80,
            cv_std=0.03,
            fit_seconds=3.0,
            interpretability=0.7,
            memory_mb=50.0,
        ),
    ]
    ranked = rank_candidates(candidates)
    assert [c["name"] for c in ranked] == ["champion", "middle", "slow_forest"]
    assert [c["rank"] for c in ranked] == [1, 2, 3]
    assert ranked[0]["score"] == 1.0
    assert ranked[0]["criteria"] == dict.fromkeys(DEFAULT_WEIGHTS, 1.0)
    assert ranked[-1]["score"] == 0.0
    _plain(ranked)


def test_performance_only_weights_rank_by_performance() -> None:
    candidates = [
        _candidate("fast_weak", performance=0.70, cv_std=0.0, fit_seconds=0.01),
        _candidate("slow_strong", performance=0.95, cv_std=0.10, fit_seconds=100.0),
        _candidate("medium", performance=0.85, cv_std=0.05, fit_seconds=10.0),
    ]
    default = rank_candidates(candidates)
    assert default[0]["name"] != "slow_strong"
    perf_only = rank_candidates(candidates, weights={"performance": 3.0})
    assert [c["name"] for c in perf_only] == ["slow_strong", "medium", "fast_weak"]
    assert perf_only[0]["score"] == 1.0


def test_input_not_mutated_and_new_dicts_returned() -> None:
    candidates = [_candidate("a", performance=0.9), _candidate("b", performance=0.7)]
    before = copy.deepcopy(candidates)
    ranked = rank_candidates(candidates)
    assert candidates == before
    assert all(r is not c for r in ranked for c in candidates)
    assert {"criteria", "score", "rank"} <= set(ranked[0])


@pytest.mark.parametrize(
    "weights",
    [{"performance": 1.0, "colour": 0.5}, {"performance": -0.1, "speed": 1.0}, {"speed": 0.0}],
)
def test_invalid_weights_raise(weights: dict) -> None:
    with pytest.raises(ValueError):
        rank_candidates([_candidate("a")], weights=weights)


def test_unknown_weight_names_are_named() -> None:
    with pytest.raises(ValueError, match="colour"):
        rank_candidates([_candidate("a")], weights={"colour": 1.0})


def test_ties_are_deterministic() -> None:
    # Identical on everything: alphabetical by name, whatever the input order.
    same = [_candidate("zeta"), _candidate("alpha"), _candidate("mid")]
    for order in (same, same[::-1]):
        assert [c["name"] for c in rank_candidates(order)] == ["alpha", "mid", "zeta"]
    # Equal scores, different performance: higher performance first.
    tied = [
        _candidate("a", performance=0.8, cv_std=0.01),
        _candidate("b", performance=0.9, cv_std=0.03),
    ]
    weights = {"performance": 0.5, "robustness": 0.5}
    ranked = rank_candidates(tied, weights=weights)
    assert ranked[0]["score"] == ranked[1]["score"]
    assert [c["name"] for c in ranked] == ["b", "a"]


def test_missing_optional_keys_get_worst_value_and_empty_list() -> None:
    with_all = _candidate("with_all")
    bare = _candidate("bare")
    del bare["interpretability"], bare["memory_mb"]
    ranked = {c["name"]: c for c in rank_candidates([bare, with_all])}
    assert ranked["bare"]["criteria"]["interpretability"] == 0.0
    assert ranked["bare"]["criteria"]["memory"] == 0.0
    assert ranked["with_all"]["rank"] == 1
    assert rank_candidates([]) == []
    with pytest.raises(ValueError, match="cv_std"):
        rank_candidates([{"name": "x", "performance": 0.5}])


def test_holm_steps_down_and_stops_at_the_first_failure() -> None:
    """m = 4 at alpha 0.05: the k-th smallest p must be below 0.0125, 0.0167, 0.025, 0.05."""
    p = {"a": 0.010, "b": 0.016, "c": 0.049, "d": 0.001, "e": None}
    assert holm_significant(p, 0.05) == {"a", "b", "c", "d"}
    # m = 3, thresholds 0.0167, 0.025, 0.05: b (0.03) stops the walk, so c is not
    # significant though 0.031 < 0.05
    assert holm_significant({"a": 0.001, "b": 0.03, "c": 0.031}, 0.05) == {"a"}
    assert holm_significant({"a": 0.04, "b": 0.001}, 0.05) == {"a", "b"}
    assert holm_significant({"a": 0.03, "b": 0.026}, 0.05) == set()   # 0.026 >= 0.025
    assert holm_significant({}, 0.05) == set()
    with pytest.raises(ValueError):
        holm_significant({"a": 0.01}, 1.5)
