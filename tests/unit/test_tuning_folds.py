"""Tuning's speed-ups give the very scores of the plain way: preprocessing fitted once per
fold for all trials, and selection reusing the tuning folds' scores when they are its folds."""

from __future__ import annotations

from datetime import date

import pytest
from sklearn.model_selection import StratifiedKFold

from models.data.generators import customer, medical, news
from models.data.spec import DatasetSpec
from models.learning.fit import make_model, scheme_scores, selection_scheme, split_data
from models.learning.tuning import PreprocessedFolds, fold_score, split_preprocess
from models.training.steps import selection_folds_are_tuning_folds, train_branch

DAY = date(2026, 9, 1)
CASES = [
    (customer.SPEC, customer.generate, "logistic_regression", "none"),
    (customer.SPEC, customer.generate, "knn", "random_oversample"),
    (medical.SPEC, medical.generate, "random_forest", "cost_weight"),
    (news.SPEC, news.generate, "naive_bayes", "none"),
    (news.SPEC, news.generate, "dummy", "none"),
]


@pytest.mark.parametrize(("spec", "generate", "algorithm", "imbalance"), CASES,
                         ids=[f"{c[0].name}-{c[2]}" for c in CASES])
def test_preprocessed_folds_score_as_the_whole_pipeline(spec: DatasetSpec, generate,
                                                        algorithm: str, imbalance: str) -> None:
    split = split_data(generate(DAY, 300, 4), spec, seed=1)
    x, y = split.x_train, split.y_train
    splits = list(StratifiedKFold(3, shuffle=True, random_state=1).split(x, y))
    folds = PreprocessedFolds(x, y, splits)
    for _ in range(2):                  # a second model of the same kind reuses the folds
        model = make_model(spec, algorithm, imbalance=imbalance, seed=1)
        assert split_preprocess(model) is not None
        for index, (train, test) in enumerate(splits):
            assert folds.score(model, index) == fold_score(model, x, y, train, test)
    assert len(folds._fitted) == 1       # one preprocessor, fitted once per fold


def test_wrapped_models_are_scored_whole() -> None:
    model = make_model(customer.SPEC, "logistic_regression", imbalance="threshold_f1", seed=1)
    assert split_preprocess(model) is None
    split = split_data(customer.generate(DAY, 200, 4), customer.SPEC, seed=1)
    x, y = split.x_train, split.y_train
    splits = list(StratifiedKFold(2, shuffle=True, random_state=1).split(x, y))
    assert PreprocessedFolds(x, y, splits).score(model, 0) == fold_score(model, x, y,
                                                                         *splits[0])


def test_selection_reuses_the_tuning_folds_only_when_they_are_its_folds() -> None:
    large = split_data(news.generate(DAY, 3000, 4), news.SPEC, seed=1)
    assert selection_folds_are_tuning_folds(large, 3)
    result, tuning = train_branch(news.SPEC, large, "naive_bayes", trials=3, seed=1)
    assert tuning is not None and result.cv_scores == tuning["best_fold_scores"]
    model = make_model(news.SPEC, "naive_bayes", tuning["best_params"], seed=1)
    assert result.cv_scores == scheme_scores(model, large, selection_scheme(large, 3), seed=1)
    small = split_data(customer.generate(DAY, 600, 4), customer.SPEC, seed=1)
    assert not selection_folds_are_tuning_folds(small, 3)     # repeated folds over all rows
