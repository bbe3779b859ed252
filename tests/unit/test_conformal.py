"""Conformal review sets on real fits: the coverage they promise, agreement with MAPIE's own
`predict_set`, the card entry, the policy's error rate, and how scoring turns sets into
`needs_review` (and keeps the old confidence rule for models without a calibration)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mapie.classification import SplitConformalClassifier
from scipy.stats import binomtest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.data.datasets import builtin
from models.evaluation.conformal import (
    CARD_KEY,
    ConformalError,
    ConformalRule,
    calibrate,
    calibration_part,
    calibration_rows,
    conformal_quantile,
    held_out_figures,
    review_run,
)
from models.learning.fit import fit_candidate, make_model, refit_full, split_data
from models.serving.scoring import score_frame
from monitoring.policy import PolicyError, load_policies
from tests.support.serving_support import sample


@pytest.fixture(scope="module")
def digits() -> dict:
    """A real fit on sklearn's digits (10 classes) and three disjoint parts of the rows."""
    data = load_digits()
    x = pd.DataFrame(data.data, columns=[f"p{i}" for i in range(data.data.shape[1])])
    y = pd.Series(data.target.astype(str))
    x_fit, x_rest, y_fit, y_rest = train_test_split(x, y, train_size=0.4, random_state=1,
                                                    stratify=y)
    x_cal, x_test, y_cal, y_test = train_test_split(x_rest, y_rest, train_size=0.5,
                                                    random_state=2, stratify=y_rest)
    # a weak model (few pixels, strong penalty) so that sets are not all of size one
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.002, max_iter=500))
    model.fit(x_fit, y_fit)
    return {"model": model, "x_cal": x_cal, "y_cal": y_cal, "x_test": x_test,
            "y_test": y_test, "classes": [str(c) for c in model.classes_]}


@pytest.mark.parametrize("error_rate", [0.05, 0.1, 0.2])
def test_sets_reach_the_chosen_coverage_on_held_out_rows(digits, error_rate) -> None:
    rule = calibrate(digits["model"], digits["x_cal"], digits["y_cal"], error_rate)
    assert rule is not None and rule.n_calibration == len(digits["y_cal"])
    proba = digits["model"].predict_proba(digits["x_test"])
    figures = held_out_figures(rule, proba, digits["y_test"], digits["classes"], 0.6)
    n = len(digits["y_test"])
    hits = round(figures["coverage"] * n)
    # split conformal: coverage is at least 1 - error_rate and at most that plus
    # 1 / (n_cal + 1); on n held-out rows the count is binomial around it
    assert binomtest(hits, n, 1 - error_rate, alternative="less").pvalue > 0.001
    upper = 1 - error_rate + 1 / (rule.n_calibration + 1)
    assert binomtest(hits, n, upper, alternative="greater").pvalue > 0.001
    assert figures["coverage_low"] <= figures["coverage"] <= figures["coverage_high"]
    sizes = rule.sets(proba).sum(axis=1)
    assert figures["mean_set_size"] == pytest.approx(sizes.mean())
    assert figures["share_flagged"] == pytest.approx((sizes != 1).mean())
    assert (sizes > 1).any() and (sizes == 1).any()      # the review rule has work to do
    # the old rule's figures, on the same rows
    assert figures["old_share_flagged"] == pytest.approx((proba.max(axis=1) < 0.6).mean())


@pytest.mark.parametrize("error_rate", [0.05, 0.1, 0.3])
def test_our_sets_are_mapies_predict_set(digits, error_rate) -> None:
    rule = calibrate(digits["model"], digits["x_cal"], digits["y_cal"], error_rate)
    assert rule is not None
    mapie = SplitConformalClassifier(estimator=digits["model"],
                                     confidence_level=1 - error_rate,
                                     conformity_score="lac", prefit=True)
    mapie.conformalize(digits["x_cal"], digits["y_cal"])
    _, theirs = mapie.predict_set(digits["x_test"])
    ours = rule.sets(digits["model"].predict_proba(digits["x_test"]))
    assert theirs.shape == (len(digits["x_test"]), len(digits["classes"]), 1)
    np.testing.assert_array_equal(ours, theirs[:, :, 0])


@pytest.mark.parametrize("strategy", ["threshold_f1", "cost_sensitive"])
def test_decision_rule_wrappers_on_named_columns_calibrate(strategy) -> None:
    # CI caught this in a real medical night: MAPIE probes a prefitted model with a numpy row
    # of `n_features_in_` zeros, which a wrapper over a frame-typed pipeline cannot take;
    # the calibration now hands MAPIE the probabilities, so any model that scores frames works
    spec = builtin("medical").spec
    split = split_data(sample("medical", 600, seed=5), spec, seed=6)
    winner = fit_candidate(spec, split, "logistic_regression", imbalance=strategy, cv_folds=0)
    x_cal, y_cal, x_eval, _ = calibration_part(split.x_test, split.y_test)
    rule = calibrate(winner.model, x_cal, y_cal, 0.1)
    assert rule is not None and rule.n_calibration == len(y_cal)
    # the same threshold as LAC computed by hand: 1 - p(true class), its conformal quantile
    proba = winner.model.predict_proba(x_cal)
    true = np.searchsorted(np.asarray(winner.model.classes_).astype(str), y_cal.astype(str))
    assert rule.threshold == pytest.approx(
        conformal_quantile(1 - proba[np.arange(len(true)), true], 0.1))
    assert rule.sets(winner.model.predict_proba(x_eval)).shape == (len(x_eval),
                                                                   len(spec.classes))


def test_quantile_is_the_split_conformal_order_statistic() -> None:
    scores = np.arange(1, 20) / 20            # 19 scores: rank ceil(20 * 0.9) = 18
    assert conformal_quantile(scores, 0.1) == pytest.approx(18 / 20)
    assert conformal_quantile(scores[:8], 0.1) is None    # rank 9 of 8: no finite set
    assert conformal_quantile([], 0.1) is None


def test_too_few_calibration_rows_keep_the_old_rule(digits) -> None:
    review = review_run(digits["model"], digits["model"], digits["x_test"].iloc[:12],
                        digits["y_test"].iloc[:12], digits["classes"], 0.05, 0.6)
    assert review.served is None and "no conformal calibration" in review.note
    entry = review.card_entry()
    assert entry["calibration_rows"] == 0          # nothing was left out of the refit
    x_test, y_test = digits["x_test"].iloc[:12], digits["y_test"].iloc[:12]
    assert calibration_rows(x_test, y_test, 0.05).empty
    assert len(calibration_rows(x_test, y_test, 0.2)) == 6        # 6 >= 1 / 0.2 - 1
    assert entry["threshold"] is None and ConformalRule.from_card({CARD_KEY: entry}) is None
    assert "old_share_flagged" in entry["held_out"] and "coverage" not in entry["held_out"]


def test_card_entry_round_trips_and_bad_entries_are_refused() -> None:
    rule = ConformalRule(error_rate=0.1, threshold=0.42, n_calibration=300)
    assert ConformalRule.from_card({CARD_KEY: rule.to_card()}) == rule
    assert ConformalRule.from_card({}) is None and ConformalRule.from_card(None) is None
    with pytest.raises(ConformalError, match="malformed"):
        ConformalRule.from_card({CARD_KEY: {"threshold": 0.4}})
    with pytest.raises(ConformalError, match="not usable"):
        ConformalRule.from_card({CARD_KEY: {**rule.to_card(), "error_rate": 1.5}})
    with pytest.raises(ConformalError, match="not usable"):
        ConformalRule.from_card({CARD_KEY: {**rule.to_card(), "method": "aps"}})


def test_the_served_refit_leaves_the_calibration_half_out() -> None:
    spec = builtin("customer").spec
    split = split_data(sample("customer", 400, seed=3), spec, seed=4)
    x_cal, y_cal, x_eval, y_eval = calibration_part(split.x_test, split.y_test)
    assert len(x_cal) == len(split.x_test) // 2 and x_cal.index.intersection(
        x_eval.index).empty
    assert y_cal.value_counts().to_dict() == pytest.approx(y_eval.value_counts().to_dict(),
                                                           abs=1)
    # a 1-nearest-neighbour refit answers every row it trained on perfectly
    winner = fit_candidate(spec, split, "knn", params={"n_neighbors": 1}, cv_folds=0)
    refit = refit_full(split, winner,
                       leave_out=calibration_rows(split.x_test, split.y_test, 0.1))
    assert refit.n_rows == split.n_rows - len(x_cal)
    assert (refit.model.predict(x_eval) == y_eval).all()
    assert (refit.model.predict(x_cal) != y_cal).any()
    everything = refit_full(split, winner)
    assert (everything.model.predict(x_cal) == y_cal).all()


def test_needs_review_follows_the_set_and_old_models_keep_the_threshold() -> None:
    spec = builtin("customer").spec
    frame = sample("customer", 600, seed=5)
    model = make_model(spec, "logistic_regression").fit(frame[spec.feature_names],
                                                        frame[spec.target])
    rows = sample("customer", 300, seed=6)
    rule = calibrate(model, rows[spec.feature_names], rows[spec.target], 0.05)
    assert rule is not None
    new = sample("customer", 200, seed=7)
    scored = score_frame(model, new, spec, rule)
    assert scored.prediction_sets is not None
    size = scored.prediction_sets.sum(axis=1)
    holds = scored.prediction_sets[np.arange(len(new)), scored.indices]
    np.testing.assert_array_equal(scored.needs_review, (size != 1) | ~holds)
    assert scored.needs_review.any() and not scored.needs_review.all()
    names = scored.set_names()
    assert names is not None and [len(n) for n in names] == size.tolist()
    assert all(scored.classes[i] in n for i, n in zip(scored.indices, names, strict=True)
               if len(n) == 1)
    flagged = np.flatnonzero(size > 1)
    assert scored.review_reasons[flagged[0]] == (
        f"prediction set holds {size[flagged[0]]} classes at error rate 0.05")
    # a model registered before calibration existed: the confidence threshold decides
    old = score_frame(model, new, spec)
    assert old.prediction_sets is None and old.set_names() is None
    np.testing.assert_array_equal(old.needs_review,
                                  old.confidence < spec.confidence_threshold)


def test_policy_sets_the_review_error_rate(tmp_path: Path) -> None:
    shipped = load_policies()
    assert shipped["default"].review_error_rate == 0.1
    path = tmp_path / "policies.yaml"
    path.write_text("default:\n  review_error_rate: 0.2\nmedical:\n  review_error_rate: 0.05\n")
    policies = load_policies(path)
    assert policies["default"].review_error_rate == 0.2
    assert policies["medical"].review_error_rate == 0.05
    path.write_text("default:\n  review_error_rate: 1.5\n")
    with pytest.raises(PolicyError, match="review_error_rate"):
        load_policies(path)


def test_report_section_states_coverage_next_to_the_old_rule(digits) -> None:
    from models.reports.conformal_section import conformal_section

    x = pd.concat([digits["x_cal"], digits["x_test"]])
    y = pd.concat([digits["y_cal"], digits["y_test"]])
    review = review_run(digits["model"], digits["model"], x, y, digits["classes"], 0.1, 0.6)
    f = review.figures
    text = conformal_section(review)
    assert f"| set of 0 or 2+ classes at error rate 0.1 | {f['share_flagged']:.1%} " in text
    assert f"| confidence below 0.6 (old rule) | {f['old_share_flagged']:.1%} " in text
    assert f"{f['coverage']:.1%} ({f['coverage_low']:.1%} to {f['coverage_high']:.1%})" in text
    assert sum(v["rows"] for v in f["per_class"].values()) == f["n_rows"]
    assert all(f"| {name} | {v['rows']} |" in text for name, v in f["per_class"].items())
    few = review_run(digits["model"], digits["model"], x.iloc[:12], y.iloc[:12],
                     digits["classes"], 0.05, 0.6)
    assert "old rule" in conformal_section(few) and "error rate 0.05 |" not in (
        conformal_section(few))


@pytest.mark.parametrize("n_classes", [3, 70])     # bit codes, and np.unique over rows
def test_set_names_and_texts_are_each_rows_set(n_classes) -> None:
    from models.serving.scoring import Scored

    rng = np.random.default_rng(0)
    sets = rng.random((500, n_classes)) < 0.3
    classes = [f"c{j}" for j in range(n_classes)]
    scored = Scored(classes, np.zeros(500, dtype=int), rng.random((500, n_classes)), 0.0,
                    np.zeros(500, dtype=bool), [None] * 500, sets)
    expected = [[classes[j] for j in np.flatnonzero(row)] for row in sets]
    assert scored.set_names() == expected
    assert scored.set_texts() is not None
    assert [json.loads(t) for t in scored.set_texts()] == expected
