"""Ensembles: stacking without leakage, dynamic selection against a per-row reference, a
resumable Optuna search, diversity by hand, and an honest comparison on the medical data."""

from __future__ import annotations

import math
import pickle
from datetime import date
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from models.data.generators import customer, medical, news
from models.evaluation.statistics import mcnemar_test
from models.learning.catalogue import algorithms_for, build_model, get_algorithm
from models.learning.ensembles.base import EnsembleMixin, ensemble_of
from models.learning.ensembles.diversity import (
    cost_against_best,
    disagreement,
    pairwise_diversity,
    prune_members,
    q_statistic,
    vote_entropy,
)
from models.learning.ensembles.search import EnsembleSearchError, search_weights
from models.learning.ensembles.selection import DynamicSelectionEnsemble
from models.learning.ensembles.stacking import OptimisedVotingEnsemble, StackingEnsemble
from models.learning.fit import make_model, split_data
from models.reports.model_report import build_model_report
from models.training.steps import plan_algorithms, train_branch
from monitoring.gate import GateConfig, judge
from tests.support.ensemble_data import leaky_data, on_columns

DAY = date(2026, 10, 1)
ENSEMBLES = ("stacking", "dynamic_selection", "voting_optimised")
CHEAP = ("logistic_regression", "random_forest", "knn")


# --------------------------------------------------------------------------- stacking




def test_out_of_fold_stacking_does_not_trust_a_memorising_member() -> None:
    x, y = leaky_data(1200, 0)
    x_train, x_test, y_train, y_test = x[:600], x[600:], y[:600], y[600:]
    memoriser = on_columns(list(range(2, 12)), KNeighborsClassifier(n_neighbors=1))
    honest = on_columns([0, 1], LogisticRegression())
    members = [("memoriser", memoriser), ("honest", honest)]
    # the leak: in sample, the memoriser's output *is* the target; out of fold it is noise
    fitted = {name: clone(e).fit(x_train, y_train) for name, e in members}
    assert (fitted["memoriser"].predict(x_train) == y_train).all()
    oof = cross_val_predict(clone(memoriser), x_train, y_train,
                            cv=StratifiedKFold(5, shuffle=True, random_state=0))
    assert np.mean(oof == y_train) < 0.6
    honest_accuracy = np.mean(fitted["honest"].predict(x_test) == y_test)

    # a naive stack learns its meta model on in-sample member outputs
    def level1(data: np.ndarray) -> np.ndarray:
        return np.hstack([fitted[name].predict_proba(data) for name, _ in members])

    naive = LogisticRegression().fit(level1(x_train), y_train)
    naive_accuracy = np.mean(naive.predict(level1(x_test)) == y_test)
    stack = StackingEnsemble(members, meta=[("meta", LogisticRegression())],
                             final=("final", LogisticRegression()), cv=5).fit(x_train, y_train)
    stack_accuracy = np.mean(stack.predict(x_test) == y_test)

    assert naive_accuracy < honest_accuracy - 0.1          # the leak hurts the naive stack
    assert stack_accuracy >= honest_accuracy - 0.03        # and not the out-of-fold one
    # level 2 leans on the honest member, the naive meta model on the memoriser
    meta = np.abs(stack.meta_[0][1].coef_[0])
    assert meta[2:].sum() > 2 * meta[:2].sum()
    assert np.abs(naive.coef_[0][:2]).sum() > np.abs(naive.coef_[0][2:]).sum()
    # and the recorded evidence shows the memoriser for what it is
    assert stack.member_scores_["memoriser"] < 0.6 < stack.member_scores_["honest"]


# --------------------------------------------------------------------------- dynamic selection


def _slow_reference(model: DynamicSelectionEnsemble, x_train: np.ndarray, y_train: np.ndarray,
                    x_query: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """KNORA-E, then KNORA-U, then all members: one query row at a time, in plain Python.

    It redoes the validation split and the neighbour search itself, and takes from the model
    only its fitted members and the members' probabilities on the batch (a member's
    probabilities for one row alone can differ in the last bit, which is not under test).
    """
    _, x_val, _, y_val = train_test_split(x_train, y_train, test_size=model.validation_size,
                                          stratify=y_train, random_state=model.random_state)
    members = [m for _, m in model.members_]
    right = [[bool(p == t) for p, t in zip(m.predict(x_val), y_val, strict=True)]
             for m in members]
    probas = [model._member_proba(m, x_query) for m in members]
    out, branches = np.zeros((len(x_query), len(model.classes_))), []
    for i, row in enumerate(x_query):
        distances = [(sum((float(a) - float(b)) ** 2 for a, b in zip(row, v, strict=True)), j)
                     for j, v in enumerate(x_val)]
        region = [j for _, j in sorted(distances)[:model.k]]
        weights: list[float] = []
        for depth in range(len(region), 0, -1):
            chosen = [all(right[m][j] for j in region[:depth]) for m in range(len(members))]
            if any(chosen):
                weights = [float(c) for c in chosen]
                branches.append("eliminate" if depth == len(region) else "shrunk")
                break
        if not weights:
            weights = [float(sum(right[m][j] for j in region)) for m in range(len(members))]
            branches.append("union")
            if sum(weights) == 0:
                weights = [1.0] * len(members)
                branches[-1] = "all"
        total = np.zeros(len(model.classes_))
        for m, proba in enumerate(probas):
            total = total + weights[m] * proba[i]
        out[i] = total / sum(weights)
    return out, branches


def test_dynamic_selection_equals_a_slow_per_row_reference() -> None:
    rng = np.random.default_rng(3)
    n = 420
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 1, (n, 4)) + np.eye(3, 4)[y] * 1.2
    noisy = rng.random(n) < 0.3                               # label noise: weak, unsure members
    y = np.where(noisy, rng.integers(0, 3, n), y).astype(str)
    members = [("lr", LogisticRegression()), ("tree", DecisionTreeClassifier(max_depth=2)),
               ("nb", GaussianNB())]
    model = DynamicSelectionEnsemble(members, k=3, random_state=1).fit(x[:300], y[:300])
    query = x[300:]
    expected, branches = _slow_reference(model, x[:300], y[:300], query)
    proba = model.predict_proba(query)
    assert np.array_equal(proba, expected)
    assert np.array_equal(model.predict(query), model.classes_[np.argmax(expected, axis=1)])
    # the case reaches every branch of the rule, so each one was compared
    assert {"eliminate", "shrunk", "union", "all"} <= set(branches)


# --------------------------------------------------------------------------- Optuna search


def _oof_probas(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 400)
    probas = {}
    for name, skill in (("strong", 2.0), ("medium", 1.0), ("weak", 0.3)):
        logits = rng.normal(0, 1, (400, 3)) + skill * np.eye(3)[y]
        probas[name] = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probas, y


@pytest.mark.parametrize("file_name", ["study.db", "study.log"])
def test_optuna_search_resumes_from_its_storage(tmp_path: Path, file_name: str) -> None:
    probas, y = _oof_probas(0)
    storage = tmp_path / file_name
    first = search_weights(probas, y, n_trials=8, seed=5, storage=storage)
    again = search_weights(probas, y, n_trials=8, seed=5, storage=storage)
    assert (first.n_trials, again.n_trials) == (8, 16) and first.study_name == again.study_name
    assert again.score >= first.score
    storage_url = (optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(storage))) if file_name.endswith(".log") else f"sqlite:///{storage}")
    study = optuna.load_study(study_name=again.study_name, storage=storage_url)
    assert again.score == max(t.value for t in study.trials if t.value is not None)
    assert study.trials[0].params == {**{f"use_{n}": True for n in probas},
                                      **{f"weight_{n}": 1.0 for n in probas}}
    other, y_other = _oof_probas(1)
    with pytest.raises(EnsembleSearchError, match="searched another problem"):
        search_weights(other, y_other, n_trials=2, storage=storage, study_name=again.study_name)


def test_optimised_voting_resumes_its_study_across_fits(tmp_path: Path) -> None:
    x, y = leaky_data(300, 4)
    members = [("lr", LogisticRegression()), ("nb", GaussianNB()),
               ("tree", DecisionTreeClassifier(max_depth=3, random_state=0))]
    storage = str(tmp_path / "voting.db")
    model = OptimisedVotingEnsemble(members, n_trials=6, storage=storage, random_state=2)
    first = clone(model).fit(x, y)
    second = clone(model).fit(x, y)
    assert (first.search_["n_trials"], second.search_["n_trials"]) == (6, 12)
    assert second.search_["best_search_f1_macro"] >= first.search_["best_search_f1_macro"]
    assert set(second.weights_) <= {"lr", "nb", "tree"} and second.weights_


# --------------------------------------------------------------------------- catalogue path


@pytest.fixture(scope="module")
def customer_xy() -> tuple[pd.DataFrame, pd.Series]:
    frame = customer.generate(DAY, 500, 1)
    return frame[customer.SPEC.feature_names], frame[customer.SPEC.target]


@pytest.mark.parametrize("algorithm", ENSEMBLES)
def test_catalogue_ensemble_pickles_inside_its_pipeline(customer_xy, algorithm: str) -> None:
    x, y = customer_xy
    pipeline = build_model(customer.SPEC, algorithm, {"members": ("logistic_regression", "knn")},
                           seed=3)
    assert isinstance(pipeline.named_steps["classify"], EnsembleMixin)
    pipeline.fit(x, y)
    restored = pickle.loads(pickle.dumps(pipeline))
    assert np.array_equal(restored.predict_proba(x), pipeline.predict_proba(x))
    assert np.array_equal(restored.predict(x), pipeline.predict(x))
    assert list(restored.classes_) == sorted(customer.SPEC.classes)
    ensemble = ensemble_of(restored)
    assert ensemble is not None and ensemble.ensemble_summary()["members"]
    # uncertainty: zero exactly where every member votes the same
    votes = np.stack(list(ensemble.member_predictions(
        restored.named_steps["preprocess"].transform(x)).values()))
    entropy = ensemble.uncertainty(restored.named_steps["preprocess"].transform(x))
    assert np.array_equal(entropy == 0, (votes == votes[0]).all(axis=0))
    assert ((entropy >= 0) & (entropy <= 1)).all()


def test_ensembles_are_offered_only_when_named() -> None:
    assert not set(ENSEMBLES) & set(algorithms_for("tabular"))
    assert not set(ENSEMBLES) & set(plan_algorithms(medical.SPEC, 2000)["algorithms"])
    assert set(ENSEMBLES) <= set(algorithms_for("text", opt_in=True))
    plan = plan_algorithms(medical.SPEC, 2000, "logistic_regression,stacking")
    assert plan["algorithms"] == ["logistic_regression", "stacking"]
    assert plan["imbalance"]["stacking"] == "cost_weight"   # its cost matrix, not resampling
    assert get_algorithm("voting_optimised", "text").opt_in


def test_text_ensemble_picks_text_members() -> None:
    frame = news.generate(DAY, 400, 2)
    model = make_model(news.SPEC, "dynamic_selection")
    model.fit(frame[news.SPEC.feature_names], frame[news.SPEC.target])
    ensemble = ensemble_of(model)
    assert ensemble is not None and ensemble.kind == "text"
    assert [n for n, _ in ensemble.members_] == ["naive_bayes", "logistic_regression", "sgd"]


def test_training_branch_and_report_show_the_ensemble(tmp_path: Path) -> None:
    split = split_data(customer.generate(DAY, 500, 5), customer.SPEC, seed=0)
    result, tuning = train_branch(customer.SPEC, split, "dynamic_selection", trials=2,
                                  cv_folds=2)
    assert tuning is not None and tuning["n_trials"] == 1    # no outer search of an ensemble
    assert len(result.cv_scores) >= 2 and 0 < result.metrics["f1_macro"] <= 1   # small: repeated CV
    html = build_model_report(spec=customer.SPEC, model=result.model, algorithm=result.name,
                              metrics=result.metrics, X_test=split.x_test, y_test=split.y_test,
                              out_dir=tmp_path)
    text = (html.parent / "report.md").read_text()
    section = text.split("## Ensemble and members")[1].split("\n## ")[0]
    for name in ("logistic_regression", "random_forest", "gradient_boosting", "knn"):
        assert f"| {name} |" in section
    assert "DynamicSelectionEnsemble" in section and "Q-statistic" in section


# --------------------------------------------------------------------------- diversity


def test_diversity_statistics_match_hand_counts() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 1])
    a = np.array([0, 0, 0, 1, 1, 1, 0, 1, 0, 0])   # right on rows 0,1,2,4,5,7,8
    b = np.array([0, 0, 1, 1, 1, 0, 0, 1, 1, 1])   # right on rows 0,1,4,7,9
    # N11 = 4 (0,1,4,7), N10 = 3 (2,5,8), N01 = 1 (9), N00 = 2 (3,6)
    assert disagreement(a == y, b == y) == pytest.approx(4 / 10)
    assert q_statistic(a == y, b == y) == pytest.approx((4 * 2 - 1 * 3) / (4 * 2 + 1 * 3))
    assert math.isnan(q_statistic(y == y, y == y))             # never wrong: undefined
    pair = pairwise_diversity({"a": a, "b": b}, y)
    assert pair == [{"member_a": "a", "member_b": "b", "disagreement": pytest.approx(0.4),
                     "q_statistic": pytest.approx(5 / 11)}]
    votes = np.array([["x", "x", "x"], ["x", "x", "y"], ["x", "y", "z"]]).T
    two_one = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)) / math.log(3)
    assert vote_entropy(votes) == pytest.approx([0.0, two_one, 1.0])


def test_pruning_drops_harmful_and_redundant_members() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    good = np.full((6, 3), 0.2)
    good[np.arange(6), y] = 0.6
    bad = np.full((6, 3), 0.05)
    bad[np.arange(6), (y + 1) % 3] = 0.9                       # confidently wrong
    # all three: right class 0.6 + 0.6 + 0.05 = 1.25 < wrong class 0.2 + 0.2 + 0.9 = 1.3
    result = prune_members({"good": good, "copy": good.copy(), "bad": bad}, y)
    assert result.kept == ["good"] and result.dropped == ["bad", "copy"]
    assert [h["f1_macro"] for h in result.history] == [0.0, 1.0, 1.0]
    cost = cost_against_best({"fit_seconds": 6.0, "predict_seconds": 0.3, "f1_macro": 0.82},
                             {"lr": {"fit_seconds": 1.0, "predict_seconds": 0.1, "f1_macro": 0.8},
                              "rf": {"fit_seconds": 3.0, "predict_seconds": 0.2,
                                     "f1_macro": 0.81}})
    assert cost["best_member"] == "rf" and cost["f1_gain"] == pytest.approx(0.01)
    assert (cost["fit_ratio"], cost["predict_ratio"]) == pytest.approx((2.0, 1.5))


# --------------------------------------------------------------------------- medical + gate


@pytest.fixture(scope="module")
def medical_contest() -> dict[str, object]:
    """The optimised ensemble and the best single model (by validation) on medical data."""
    split = split_data(medical.generate(DAY, 1600, 7), medical.SPEC, test_size=0.3, seed=0)
    ensemble = build_model(medical.SPEC, "voting_optimised", {"members": CHEAP, "n_trials": 40},
                           imbalance="class_weight", seed=0).fit(split.x_train, split.y_train)
    scores = ensemble_of(ensemble).member_scores_           # out-of-fold macro F1
    best = max(scores, key=scores.get)
    single = make_model(medical.SPEC, best, imbalance="class_weight" if get_algorithm(
        best).class_weight else "none", seed=0).fit(split.x_train, split.y_train)
    holdout = split.x_test.assign(**{medical.SPEC.target: split.y_test.to_numpy()})
    return {"split": split, "ensemble": ensemble, "single": single, "best": best,
            "holdout": holdout}


def test_optimised_ensemble_against_best_single_model_on_medical(
        medical_contest, record_property) -> None:
    split, ensemble, single = (medical_contest[k] for k in ("split", "ensemble", "single"))
    truth = split.y_test.to_numpy()
    test = mcnemar_test(truth, ensemble.predict(split.x_test), single.predict(split.x_test))
    result = judge(medical.SPEC, ensemble, single, medical_contest["holdout"],
                   challenger_name="voting_optimised", champion_name=medical_contest["best"])
    comparison = next(c for c in result.checks if c.name == "comparison")
    assert comparison.evidence["mcnemar"] == test              # the same test, computed
    assert comparison.evidence["ensemble_needs_significance"] is True
    outcome = (f"ensemble macro F1 {comparison.evidence['f1_macro']:.3f} vs best single "
               f"({medical_contest['best']}) {comparison.evidence['champion_f1_macro']:.3f}, "
               f"McNemar b={test['b']} c={test['c']} p={test['p_value']:.3g}: "
               f"gate {'passes' if result.passed else 'refuses'}")
    record_property("medical_ensemble_vs_best_single", outcome)
    print(outcome)
    if test["better"] == "a":
        assert comparison.passed, comparison.detail
    else:                                                      # not proven better: not promoted
        assert not comparison.passed and not result.passed
        assert "significantly better" in " | ".join(result.reasons)


def test_gate_refuses_an_ensemble_that_does_not_help(medical_contest) -> None:
    ensemble, holdout = medical_contest["ensemble"], medical_contest["holdout"]
    twin = pickle.loads(pickle.dumps(ensemble))                # same predictions: no gain
    refused = judge(medical.SPEC, ensemble, twin, holdout)
    comparison = next(c for c in refused.checks if c.name == "comparison")
    assert comparison.evidence["f1_macro"] == comparison.evidence["champion_f1_macro"]
    assert not comparison.passed and not refused.passed
    # the refusal is the significance rule for ensembles: without it the tie would pass
    lenient = GateConfig(min_accuracy=0.80, min_f1_macro=0.75,
                         ensemble_needs_significance=False)
    relaxed = judge(medical.SPEC, ensemble, twin, holdout, lenient)
    assert next(c for c in relaxed.checks if c.name == "comparison").passed
    single = medical_contest["single"]
    same = judge(medical.SPEC, single, pickle.loads(pickle.dumps(single)), holdout)
    assert next(c for c in same.checks if c.name == "comparison").passed   # singles as before


def test_the_members_lookup_knows_every_ensemble_by_name() -> None:
    """The ensembles' base refuses an ensemble as a member by name, without importing the
    entries (which build on it): its list must be the entries' names."""
    from models.learning.catalogue import CATALOGUE
    from models.learning.ensembles.base import ENSEMBLE_NAMES, MEMBERS, resolve_members
    from models.learning.ensembles.stacking import ENSEMBLE_ALGORITHMS

    assert set(ENSEMBLE_NAMES) == {a.name for a in ENSEMBLE_ALGORITHMS}
    assert set(MEMBERS) | set(ENSEMBLE_NAMES) == set(CATALOGUE)
    with pytest.raises(Exception, match="is an ensemble"):
        resolve_members(["stacking"], "tabular", seed=0)
