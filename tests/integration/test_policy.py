"""The retraining policy: each trigger alone, the cool-down, the policy file, the decision row."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.data.generators import customer
from models.registry.versions import promote, register_model
from monitoring.performance import record_batch_labels
from monitoring.policy import (
    POLICY_FILE,
    Evidence,
    PolicyError,
    RetrainingPolicy,
    decide,
    evaluate_triggers,
    gather_evidence,
    load_policies,
    policy_for,
)
from warehouse import connect, transaction

NIGHT = date(2026, 6, 10)
POLICY = RetrainingPolicy()
HEALTHY = Evidence(
    dataset="customer", night_date=NIGHT, champion_version="customer-v1",
    batch_id="customer-2026-06-10", champion_accuracy=0.90, champion_f1=0.88, accuracy=0.89,
    f1_macro=0.86, n_labelled=500, share_drifted=0.1, dataset_drift=False, model_age_days=2,
    new_labelled_rows=2000, last_retrain_date=None,
)
NO_CHAMPION = Evidence(dataset="customer", night_date=NIGHT, champion_version=None)


def test_healthy_night_fires_nothing() -> None:
    decision = evaluate_triggers(HEALTHY, POLICY)
    assert not decision.retrain and decision.fired == []
    assert decision.reason == "No retrain: no trigger fired."
    assert [t.name for t in decision.triggers] == [
        "missing_champion", "accuracy_drop", "f1_drop", "data_drift", "model_age",
        "new_labelled_rows"]
    drop = decision.triggers[1]
    assert (drop.value, drop.threshold) == (pytest.approx(0.01), 0.05)


@pytest.mark.parametrize(("changes", "name", "phrase"), [
    ({"accuracy": 0.80}, "accuracy_drop", "accuracy drop 0.100 > 0.05"),
    ({"f1_macro": 0.80}, "f1_drop", "F1 drop 0.080 > 0.05"),
    ({"share_drifted": 0.6}, "data_drift", "data drift (share of drifted columns 0.60 >= 0.5)"),
    ({"dataset_drift": True}, "data_drift", "dataset drift detected"),
    ({"model_age_days": 9}, "model_age", "model age 9 days > 7"),
    ({"new_labelled_rows": 26000}, "new_labelled_rows",
     "new labelled rows since training 26000 >= 20000"),
])
def test_each_trigger_fires_alone(changes: dict, name: str, phrase: str) -> None:
    decision = evaluate_triggers(replace(HEALTHY, **changes), POLICY)
    assert [t.name for t in decision.fired] == [name]
    assert decision.retrain
    assert decision.reason.startswith("Retrain because ") and phrase in decision.reason


def test_missing_champion_fires_alone() -> None:
    decision = evaluate_triggers(NO_CHAMPION, POLICY)
    assert [t.name for t in decision.fired] == ["missing_champion"]
    assert decision.retrain and "missing champion (customer has no champion)" in decision.reason
    assert all("abstains" in t.note for t in decision.triggers[1:])


def test_performance_abstains_on_few_labels() -> None:
    decision = evaluate_triggers(replace(HEALTHY, accuracy=0.5, f1_macro=0.5, n_labelled=40),
                                 POLICY)
    assert decision.fired == [] and not decision.retrain
    assert "abstains" in decision.triggers[1].note and "40 labelled" in decision.triggers[1].note
    no_labels = evaluate_triggers(replace(HEALTHY, accuracy=None, n_labelled=None), POLICY)
    assert no_labels.triggers[1].value is None and not no_labels.triggers[1].fired


def test_cooldown_holds_the_day_after_a_retrain() -> None:
    drifted = replace(HEALTHY, share_drifted=0.7, last_retrain_date=date(2026, 6, 9))
    decision = evaluate_triggers(drifted, POLICY)
    assert not decision.retrain and decision.cooldown_held
    assert [t.name for t in decision.fired] == ["data_drift"]
    assert "data drift" in decision.reason and decision.reason.endswith(
        "the cool-down holds (last retrain decided 2026-06-09, 1 day ago; cool-down 1 day).")
    later = evaluate_triggers(replace(drifted, last_retrain_date=date(2026, 6, 8)), POLICY)
    assert later.retrain and not later.cooldown_held


def test_missing_champion_overrides_cooldown() -> None:
    decision = evaluate_triggers(replace(NO_CHAMPION, last_retrain_date=date(2026, 6, 9)), POLICY)
    assert decision.retrain and not decision.cooldown_held
    assert "which overrides the cool-down" in decision.reason


def _decision_rows() -> list[tuple]:
    with connect(read_only=True) as con:
        return con.execute("SELECT decision_id, retrain, reason, triggers, batch_id"
                           " FROM retraining_decisions").fetchall()


def _drift_report(share: float) -> None:
    with transaction() as con:
        con.execute("INSERT OR REPLACE INTO drift_reports (report_id, dataset, batch_id,"
                    " night_date, n_columns, n_drifted, share_drifted, dataset_drift, created_at)"
                    " VALUES ('r1', 'customer', 'customer-2026-06-10', ?, 10, ?, ?, ?, ?)",
                    [NIGHT, round(share * 10), share, share >= 0.5, datetime(2026, 6, 10, 2)])


def test_decide_writes_one_row_and_a_rerun_replaces_it(warehouse_path: Path) -> None:
    _drift_report(0.2)
    first = decide("customer", NIGHT, "customer-2026-06-10")
    (row,) = _decision_rows()
    assert row[0] == "customer:2026-06-10" == first.decision_id
    assert row[1] is True and row[2] == first.reason and row[4] == "customer-2026-06-10"
    triggers = {t["name"]: t for t in json.loads(row[3])}
    assert set(triggers["data_drift"]) == {"name", "value", "threshold", "fired", "note"}
    assert triggers["data_drift"] | {"note": ""} == {
        "name": "data_drift", "value": 0.2, "threshold": 0.5, "fired": False, "note": ""}
    assert triggers["missing_champion"]["fired"] is True

    _drift_report(0.8)
    again = decide("customer", NIGHT, "customer-2026-06-10")
    (row,) = _decision_rows()
    assert json.loads(row[3])[3]["fired"] is True and "data drift" in again.reason
    assert "cool-down" not in again.reason      # tonight's own decision is not a past retrain


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_text(text)
    return path


def test_policy_file_overrides_per_dataset(tmp_path: Path) -> None:
    policies = load_policies(_write(tmp_path, (
        "default:\n  max_model_age_days: 10\n"
        "customer:\n  cooldown_days: 3\n  drift_share: 0.3\n"
        "medical:\n")))
    assert policies["customer"] == RetrainingPolicy(max_model_age_days=10, cooldown_days=3,
                                                    drift_share=0.3)
    assert policies["medical"] == policies["default"] == RetrainingPolicy(max_model_age_days=10)
    assert policy_for("news", policies) == policies["default"]
    assert load_policies(tmp_path / "missing.yaml") == {"default": RetrainingPolicy()}
    shipped = load_policies(POLICY_FILE)
    assert shipped["default"] == RetrainingPolicy()
    assert shipped["medical"].max_f1_drop == 0.03


def test_policy_file_errors_name_the_key_and_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "customer:\n  max_acc_drop: 0.1\n")
    with pytest.raises(PolicyError, match=r"policies\.yaml: unknown key 'max_acc_drop' in"
                                          r" section 'customer'; known keys: max_accuracy_drop"):
        load_policies(path)
    with pytest.raises(PolicyError, match=r"section 'default': drift_share: .*less than or"):
        load_policies(_write(tmp_path, "default:\n  drift_share: 2\n"))
    with pytest.raises(PolicyError, match="must be a mapping"):
        load_policies(_write(tmp_path, "news: 3\n"))


def _register_champion(trained_at: datetime) -> str:
    x = np.random.default_rng(0).normal(size=(30, 2))
    y = np.where(x[:, 0] > 0, "High", "Low")
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    version = register_model(model, customer.SPEC, algorithm="logistic_regression",
                             metrics={"accuracy": 0.9, "f1_macro": 0.85, "per_class": {}},
                             training_batches=["customer-2026-06-01"], trained_at=trained_at)
    promote("customer", version.model_version, reason="test")
    return version.model_version


def _batch(batch_date: date, n_labelled: int, status: str = "accepted") -> None:
    with transaction() as con:
        con.execute("INSERT INTO batches (batch_id, dataset, batch_date, source, n_rows,"
                    " n_labelled, status, created_at) VALUES (?, 'customer', ?, 'generator',"
                    " ?, ?, ?, ?)", [f"customer-{batch_date}", batch_date, n_labelled,
                                     n_labelled, status, datetime(2026, 6, 1)])


def test_gather_evidence_reads_the_champion(warehouse_path: Path) -> None:
    champion = _register_champion(datetime(2026, 6, 1, 3, 0))
    _batch(date(2026, 6, 1), 2000)                      # trained on
    _batch(date(2026, 6, 2), 2000)
    _batch(date(2026, 6, 3), 1500, "quarantined")
    _batch(date(2026, 6, 5), 1800)
    _batch(date(2026, 6, 12), 2000)                     # after the night
    _drift_report(0.3)
    record_batch_labels("customer", "customer-2026-06-10", champion,
                        ["High"] * 150, ["High"] * 120 + ["Low"] * 30, NIGHT)
    with transaction() as con:
        con.execute("INSERT INTO retraining_decisions VALUES ('customer:2026-06-09', 'customer',"
                    " NULL, '2026-06-09', ?, TRUE, 'test', NULL, ?)",
                    [champion, datetime(2026, 6, 9)])

    evidence = gather_evidence("customer", NIGHT, "customer-2026-06-10")
    assert evidence == Evidence(
        dataset="customer", night_date=NIGHT, champion_version="customer-v1",
        batch_id="customer-2026-06-10", champion_accuracy=0.9, champion_f1=0.85,
        accuracy=0.8, f1_macro=evidence.f1_macro, n_labelled=150,
        share_drifted=0.3, dataset_drift=False, model_age_days=9, new_labelled_rows=3800,
        last_retrain_date=date(2026, 6, 9))

    decision = decide("customer", NIGHT, "customer-2026-06-10")
    assert {t.name for t in decision.fired} == {"accuracy_drop", "f1_drop", "model_age"}
    assert not decision.retrain and "cool-down holds" in decision.reason
    assert decision.model_version == "customer-v1"
