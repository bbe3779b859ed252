"""The training flow's step functions, without Metaflow."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import optuna
import pytest

from models.data.batches import generate_batch
from models.data.generators import customer, medical
from models.learning.fit import split_data
from models.training.steps import TrainingDataError, load_window, plan_algorithms, train_branch

DAY = date(2026, 8, 1)


def test_plan_by_kind_size_and_imbalance() -> None:
    plan = plan_algorithms(medical.SPEC, 2000)       # its spec has a cost matrix
    assert "svm" in plan["algorithms"] and plan["imbalance"]["logistic_regression"] == (
        "cost_weight")
    assert plan["imbalance"]["knn"] == "random_oversample" and plan["imbalance"]["dummy"] == (
        "none")
    big = plan_algorithms(customer.SPEC, 50_000)
    assert "svm" not in big["algorithms"] and big["imbalance"]["random_forest"] == "none"
    with pytest.raises(Exception, match="unknown algorithm 'xgb'"):
        plan_algorithms(customer.SPEC, 100, "logistic_regression,xgb")
    with pytest.raises(TrainingDataError, match="unknown imbalance strategy"):
        plan_algorithms(customer.SPEC, 100, "", "magic")


def test_window_needs_enough_labelled_rows(warehouse_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="0 labelled rows"):
        load_window("customer")
    generate_batch("customer", DAY, n_rows=200)
    _, frame, batches = load_window("customer", "2026-08-01", "2026-08-01")
    assert len(frame) == 200 and batches == ["customer-2026-08-01"]
    with pytest.raises(TrainingDataError, match="not a date"):
        load_window("customer", "yesterday")


def test_same_seed_same_data_same_result() -> None:
    split = split_data(customer.generate(DAY, 600, 1), customer.SPEC, seed=2)
    first, tuning = train_branch(customer.SPEC, split, "random_forest", trials=3, seed=5)
    again, _ = train_branch(customer.SPEC, split, "random_forest", trials=3, seed=5)
    assert first.metrics == again.metrics and first.model_params == again.model_params
    assert tuning is not None and tuning["best_score"] >= tuning["default_score"]


TUNER = textwrap.dedent("""
    import sys
    from datetime import date
    from models.learning.catalogue import build_model
    from models.data.generators import customer
    from models.learning.fit import split_data
    from models.learning.tuning import tune
    split = split_data(customer.generate(date(2026, 8, 1), 400, 1), customer.SPEC, seed=0)
    result = tune(customer.SPEC, split.x_train, split.y_train, "logistic_regression",
                  lambda p: build_model(customer.SPEC, "logistic_regression", p), trials=4,
                  seed=int(sys.argv[2]), storage=sys.argv[1], study_name="shared")
    print(result.n_trials)
""")


def test_two_processes_share_one_optuna_study(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(storage=storage, study_name="shared", direction="maximize")
    procs = [subprocess.Popen([sys.executable, "-c", TUNER, storage, str(seed)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for seed in (1, 2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=storage)
    assert len(study.trials) == 8     # both workers' trials landed in the one study


def test_imbalanced_data_compares_three_strategies_per_algorithm_as_candidates() -> None:
    """Each algorithm of an imbalanced run gets its planned strategy and the compared ones,
    fitted with the same parameters, cross-validated and scored like any candidate; the
    report's table is made of them, per class and overall."""
    from models.learning.fit import fit_candidate
    from models.learning.imbalance_comparison import fit_alternatives, imbalance_table

    plan = plan_algorithms(medical.SPEC, 2000)
    assert plan["compare_imbalance"] is True
    assert plan_algorithms(medical.SPEC, 2000, "", "smote")["compare_imbalance"] is False
    assert plan_algorithms(customer.SPEC, 2000)["compare_imbalance"] is False
    frame = medical.generate(date(2026, 3, 1), 900, 4)
    split = split_data(frame, medical.SPEC, seed=0)
    own = plan["imbalance"]["logistic_regression"]
    first = fit_candidate(medical.SPEC, split, "logistic_regression", params={"C": 2.0},
                          imbalance=own, cv_folds=3)
    others, failed = fit_alternatives(medical.SPEC, split, first, cv_folds=3, seed=0)
    assert failed == []
    assert [o.imbalance for o in others] == ["smote", "threshold_f1"]
    assert all(o.params == {"C": 2.0} and len(o.cv_scores) == len(first.cv_scores)
               for o in others)
    table = imbalance_table(medical.SPEC, [first, *others])
    assert table is not None and len(table) == 3
    assert {f"recall {c}" for c in medical.SPEC.classes} <= set(table.columns)
    smote = table[table["imbalance"] == "smote"].iloc[0]
    assert smote["f1_macro"] == round(others[0].metrics["f1_macro"], 3)
    assert imbalance_table(medical.SPEC, [first]) is None     # one strategy: nothing compared
