"""Blending: the meta-model learns only from held-out member outputs, the entry trains through
the catalogue on tabular and text data, and a seed fixes the whole fit."""

from __future__ import annotations

import pickle
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from models.data.generators import customer, medical, news
from models.learning.catalogue import algorithms_for, build_model, get_algorithm
from models.learning.ensembles.base import EnsembleMixin, ensemble_of
from models.learning.ensembles.blending import BlendingEnsemble
from models.learning.fit import make_model
from models.training.steps import plan_algorithms
from tests.support.ensemble_data import leaky_data, on_columns

DAY = date(2026, 10, 1)


class RecordingLogisticRegression(LogisticRegression):
    """A logistic regression that keeps the inputs of its last fit (what it learned from)."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> RecordingLogisticRegression:
        self.seen_x_ = np.array(X, copy=True)
        self.seen_y_ = np.array(y, copy=True)
        return super().fit(X, y, sample_weight)




MEMORISER = on_columns(list(range(2, 12)), KNeighborsClassifier(n_neighbors=1))
HONEST = on_columns([0, 1], LogisticRegression())
MEMBERS = [("memoriser", MEMORISER), ("honest", HONEST)]


@pytest.mark.parametrize("refit", [False, True])
def test_blending_meta_model_sees_only_held_out_member_probabilities(refit: bool) -> None:
    x, y = leaky_data(1200, 0)
    x_train, x_test, y_train, y_test = x[:600], x[600:], y[:600], y[600:]
    blend = BlendingEnsemble(MEMBERS, meta=("meta", RecordingLogisticRegression()),
                             refit=refit, random_state=0).fit(x_train, y_train)
    fit_rows, held_out = blend.fit_index_, blend.holdout_index_
    # the two parts split the rows; the slice is a stratified quarter
    assert not set(fit_rows) & set(held_out)
    assert sorted([*fit_rows, *held_out]) == list(range(600))
    assert len(held_out) == 150
    assert abs(np.mean(y_train[held_out] == "yes") - np.mean(y_train == "yes")) < 0.01

    # the members that produced the meta-model's inputs were fitted on the other rows only:
    # refitted on exactly those rows, they give exactly what the meta-model learned from
    stage_one = {name: clone(member).fit(x_train[fit_rows], y_train[fit_rows])
                 for name, member in MEMBERS}
    expected = np.hstack([stage_one[name].predict_proba(x_train[held_out])
                          for name, _ in MEMBERS])
    meta = blend.meta_
    assert np.array_equal(meta.seen_x_, expected)
    assert np.array_equal(meta.seen_y_, y_train[held_out])
    # ... and the 1-NN's stored training rows are the fit part (all rows once refitted)
    knn = dict(blend.members_)["memoriser"].named_steps["model"]
    own_rows = np.arange(600) if refit else fit_rows
    assert np.array_equal(knn._fit_X, x_train[own_rows][:, 2:])

    # the leak it avoids: in sample the memoriser's output *is* the target, on the slice noise
    memoriser = stage_one["memoriser"]
    assert (memoriser.predict(x_train[fit_rows]) == y_train[fit_rows]).all()
    seen_memoriser = meta.seen_x_[:, :2].argmax(axis=1)
    assert np.mean(blend.classes_[seen_memoriser] == y_train[held_out]) < 0.62

    # a naive blend whose meta-model learns in-sample outputs trusts the memoriser and loses
    def outputs(data: np.ndarray) -> np.ndarray:
        return np.hstack([stage_one[name].predict_proba(data) for name, _ in MEMBERS])

    naive = LogisticRegression().fit(outputs(x_train[fit_rows]), y_train[fit_rows])
    naive_accuracy = np.mean(naive.predict(outputs(x_test)) == y_test)
    honest_accuracy = np.mean(stage_one["honest"].predict(x_test) == y_test)
    blend_accuracy = np.mean(blend.predict(x_test) == y_test)
    assert naive_accuracy < honest_accuracy - 0.1
    assert blend_accuracy >= honest_accuracy - 0.03
    weights = np.abs(meta.coef_[0])
    assert weights[2:].sum() > 2 * weights[:2].sum()           # leans on the honest member
    # the recorded evidence is measured on the slice, and shows the memoriser for what it is
    assert blend.member_scores_["memoriser"] < 0.62 < blend.member_scores_["honest"]
    assert blend.ensemble_summary()["validation_is_optimistic"] is False


@pytest.fixture(scope="module")
def customer_xy() -> tuple[pd.DataFrame, pd.Series]:
    frame = customer.generate(DAY, 500, 1)
    return frame[customer.SPEC.feature_names], frame[customer.SPEC.target]


def test_blending_trains_through_the_catalogue_and_pickles(customer_xy) -> None:
    x, y = customer_xy
    pipeline = build_model(customer.SPEC, "blending",
                           {"members": ("logistic_regression", "random_forest", "knn")}, seed=3)
    assert isinstance(pipeline.named_steps["classify"], BlendingEnsemble)
    pipeline.fit(x, y)
    restored = pickle.loads(pickle.dumps(pipeline))
    proba = restored.predict_proba(x)
    assert np.array_equal(proba, pipeline.predict_proba(x))
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert list(restored.classes_) == sorted(customer.SPEC.classes)
    assert set(restored.predict(x)) <= set(customer.SPEC.classes)
    ensemble = ensemble_of(restored)
    assert isinstance(ensemble, BlendingEnsemble) and ensemble.random_state == 3
    summary = ensemble.ensemble_summary()
    assert [m["member"] for m in summary["members"]] == ["logistic_regression", "random_forest",
                                                         "knn"]
    assert {m["role"] for m in summary["members"]} == {"fitted outside the blend slice"}
    assert 0 < summary["validation_f1_macro"] <= 1


def test_blending_is_opt_in_and_weighted_like_the_other_ensembles() -> None:
    assert "blending" not in algorithms_for("tabular")
    assert "blending" not in plan_algorithms(medical.SPEC, 2000)["algorithms"]
    assert "blending" in algorithms_for("text", opt_in=True)
    assert get_algorithm("blending", "tabular").opt_in
    plan = plan_algorithms(medical.SPEC, 2000, "logistic_regression,blending")
    assert plan["imbalance"]["blending"] == "cost_weight"
    frame = medical.generate(DAY, 400, 0)
    model = make_model(medical.SPEC, "blending", {"members": ("logistic_regression", "knn")},
                       imbalance="cost_weight", seed=0)
    model.fit(frame[medical.SPEC.feature_names], frame[medical.SPEC.target])
    blend = ensemble_of(model)
    assert isinstance(blend, BlendingEnsemble) and blend.class_weight is not None
    # catalogue members that take class weights get the ensemble's (the cost of a miss)
    members = dict(blend.members_)
    assert members["logistic_regression"].class_weight == blend.class_weight
    assert blend.meta_.class_weight == blend.class_weight


def test_text_blending_picks_text_members() -> None:
    frame = news.generate(DAY, 400, 2)
    model = make_model(news.SPEC, "blending", seed=1)
    x, y = frame[news.SPEC.feature_names], frame[news.SPEC.target]
    model.fit(x, y)
    ensemble = ensemble_of(model)
    assert isinstance(ensemble, EnsembleMixin) and ensemble.kind == "text"
    assert [n for n, _ in ensemble.members_] == ["naive_bayes", "logistic_regression", "sgd"]
    assert np.mean(model.predict(x) == y) > 0.5
    assert set(model.predict(x)) <= set(news.SPEC.classes)


def test_blending_is_reproducible_with_a_seed(customer_xy) -> None:
    x, y = customer_xy

    def fitted(seed: int) -> Any:
        return build_model(customer.SPEC, "blending",
                           {"members": ("logistic_regression", "random_forest")},
                           seed=seed).fit(x, y)

    first, again, other = fitted(7), fitted(7), fitted(8)
    assert np.array_equal(first.predict_proba(x), again.predict_proba(x))
    blend, twin, moved = (ensemble_of(m) for m in (first, again, other))
    assert isinstance(blend, BlendingEnsemble) and isinstance(twin, BlendingEnsemble)
    assert isinstance(moved, BlendingEnsemble)
    assert np.array_equal(blend.holdout_index_, twin.holdout_index_)
    assert blend.member_scores_ == twin.member_scores_
    assert not np.array_equal(blend.holdout_index_, moved.holdout_index_)
