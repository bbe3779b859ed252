"""The seed brief's targets on the generated data, on a fixed seed."""

from __future__ import annotations

from datetime import date

import pytest

from models.data.generators import customer, medical
from models.evaluation.statistics import mcnemar_test
from models.learning.fit import compare_candidates, split_data

DAY = date(2026, 7, 1)


@pytest.mark.slow
def test_customer_best_model_beats_target_and_dummy() -> None:
    split = split_data(customer.generate(DAY, 2000, 42), customer.SPEC, seed=0)
    grid = [(a, "none") for a in ("logistic_regression", "random_forest", "gradient_boosting",
                                  "svm", "knn", "dummy")]
    results, table = compare_candidates(customer.SPEC, split, grid, cv_folds=3)
    assert len(table) >= 5
    best = max(results, key=lambda r: r.metrics["accuracy"])
    dummy = next(r for r in results if r.algorithm == "dummy")
    assert best.metrics["accuracy"] > 0.80
    assert best.metrics["accuracy"] - dummy.metrics["accuracy"] > 0.25
    test = mcnemar_test(split.y_test, best.model.predict(split.x_test),
                        dummy.model.predict(split.x_test))
    assert test["significant"] and test["better"] == "a"


@pytest.mark.slow
def test_medical_best_imbalance_technique_meets_rare_class_targets() -> None:
    split = split_data(medical.generate(DAY, 2500, 42), medical.SPEC, seed=0)
    techniques = ("none", "class_weight", "smote", "threshold_recall", "cost_sensitive")
    grid = [("logistic_regression", t) for t in techniques] + [("dummy", "none")]
    results, _ = compare_candidates(medical.SPEC, split, grid, cv_folds=0)

    def meets(result) -> bool:
        per_class = result.metrics["per_class"]
        return (all(c["f1"] > 0.75 for c in per_class.values())
                and per_class["Rare Disease C"]["sensitivity"] > 0.90
                and per_class["Very Rare Disease D"]["sensitivity"] > 0.90)

    winners = [r.imbalance for r in results if meets(r)]
    assert winners, {r.name: r.metrics["per_class"] for r in results}
    assert any(t != "none" for t in winners)
    dummy = next(r for r in results if r.algorithm == "dummy")
    assert dummy.metrics["f1_macro"] < 0.2
