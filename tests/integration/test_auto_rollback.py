"""Automatic rollback end to end: real champions served by the Flask app, real labels through
/v1/feedback, `collect_serving_logs`, then the night's decide stage, whose first step watches
the champion (monitoring/rollback.py)."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import fisher_exact

from models.data.datasets import builtin
from models.learning.fit import make_model
from models.registry import manifest
from models.registry.artifacts import REFERENCE_FILE
from models.registry.versions import ModelVersion, get_alias, promote, register_model
from models.reports.production import save_reference
from models.serving.app import create_app
from models.serving.config import ServingConfig
from monitoring.collect import collect_serving_logs
from monitoring.policy import policy_for
from monitoring.rollback import FISHER, Counts, labelled_counts, watch_champion
from orchestration.stages import NightPlan, decide_stage
from tests.support.serving_support import sample
from warehouse import connect, transaction
from warehouse.reports import run_report

DATASET = "customer"
TODAY = datetime.now(UTC).date()
SERVED = 300                  # labelled requests per champion (rollback_min_labels is 200)


def _register(seed: int, *, scrambled: bool = False) -> ModelVersion:
    """A small logistic regression; `scrambled` fits it on shuffled targets (degraded on
    purpose: it learns nothing and answers about as well as guessing)."""
    spec = builtin(DATASET).spec
    frame = sample(DATASET, 600, seed + 1)
    target = frame[spec.target]
    if scrambled:
        target = target.sample(frac=1, random_state=seed).to_numpy()
    model = make_model(spec, "logistic_regression", None, seed=seed)
    model.fit(frame[spec.feature_names], target)
    with tempfile.TemporaryDirectory() as scratch:
        reference = save_reference(frame, spec, Path(scratch) / REFERENCE_FILE)
        return register_model(model, spec, algorithm="logistic_regression",
                              metrics={"accuracy": 0.9, "f1_macro": 0.9}, training_batches=[],
                              attachments={REFERENCE_FILE: reference})


class Service:
    """The prediction API (Flask's test client) over the test's data home."""

    def __init__(self) -> None:
        self.app = create_app(ServingConfig(datasets=[DATASET], background=False))
        self.client = self.app.test_client()
        self.store = self.app.extensions["overnight"]["store"]
        self.log = self.app.extensions["overnight"]["log"]

    def serve_and_label(self, seed: int, rows: int = SERVED) -> dict[str, Any]:
        """Predict `rows` fresh records, send their true labels as feedback; returns the
        counts by hand (answered version, labelled, right)."""
        spec = builtin(DATASET).spec
        frame = sample(DATASET, rows, seed)
        sent = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
                for r in frame[spec.feature_names].to_dict(orient="records")]
        answer = self.client.post(f"/v1/datasets/{DATASET}/predict", json=sent)
        assert answer.status_code == 200, answer.json
        predictions = answer.json["predictions"]
        truth = [str(v) for v in frame[spec.target]]
        labels = [{"prediction_id": p["prediction_id"], "label": t}
                  for p, t in zip(predictions, truth, strict=True)]
        fed = self.client.post("/v1/feedback", json={"dataset": DATASET, "labels": labels})
        assert fed.status_code == 202 and fed.json["accepted"] == rows, fed.json
        versions = {p["model_version"] for p in predictions}
        assert len(versions) == 1
        right = sum(p["class_name"] == t for p, t in zip(predictions, truth, strict=True))
        return {"version": versions.pop(), "n": rows, "right": right}

    def collect(self) -> None:
        self.log.flush()
        collect_serving_logs()


def _promote(service: Service, version: ModelVersion) -> None:
    promote(DATASET, version.model_version, reason="test promotion")
    service.store.poll_once()


def _row(night) -> dict[str, Any]:
    with connect(read_only=True) as con:
        cursor = con.execute("SELECT * FROM rollback_checks WHERE dataset = ? AND night_date = ?",
                             [DATASET, night])
        names = [d[0] for d in cursor.description]
        row = cursor.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def _alerts(kind: str) -> list[tuple[str, str, str]]:
    with connect(read_only=True) as con:
        return con.execute("SELECT alert_id, severity, message FROM alerts WHERE kind = ?"
                           " AND dataset = ?", [kind, DATASET]).fetchall()


def _night(night) -> Any:
    return decide_stage(NightPlan(night=night, datasets=[DATASET]), DATASET, None)


@pytest.fixture
def service(warehouse_path: Path) -> Service:
    """customer-v1, a good champion, serving and labelled (its figure, before any promotion)."""
    first = _register(0)
    promote(DATASET, first.model_version, reason="first champion")
    return Service()


def test_a_degraded_champion_is_rolled_back_with_its_evidence_and_one_alert(
        service: Service) -> None:
    before = service.serve_and_label(seed=101)
    degraded = _register(1, scrambled=True)
    _promote(service, degraded)
    after = service.serve_and_label(seed=102)
    assert before["version"] == "customer-v1" and after["version"] == degraded.model_version
    service.collect()

    night = TODAY + timedelta(days=1)                 # past the default 1-day cool-down
    decided = _night(night)
    assert decided.rollback and "customer-v1" in decided.rollback
    assert get_alias(DATASET, "champion") == "customer-v1"
    assert get_alias(DATASET, "previous") == degraded.model_version
    row = _row(night)
    assert row["rollback"] and row["rule"] == "performance"
    assert row["champion_version"] == degraded.model_version
    assert row["restored_version"] == "customer-v1"
    assert (row["n_labelled"], row["n_correct"]) == (after["n"], after["right"])
    assert (row["previous_n_labelled"], row["previous_n_correct"]) == (before["n"],
                                                                       before["right"])
    assert row["accuracy"] == pytest.approx(after["right"] / after["n"])
    assert row["previous_accuracy"] == pytest.approx(before["right"] / before["n"])
    by_hand = fisher_exact([[after["right"], after["n"] - after["right"]],
                            [before["right"], before["n"] - before["right"]]],
                           alternative="less").pvalue
    assert row["test"] == FISHER and row["p_value"] == pytest.approx(by_hand)
    assert row["accuracy_drop"] > row["margin"] and row["p_value"] < row["alpha"]
    [alert] = _alerts("rollback")
    assert alert[1] == "critical" and row["alert_id"] == alert[0]
    assert degraded.model_version in alert[2] and "rolled back to customer-v1" in alert[2]
    with connect(read_only=True) as con:      # the one alert of the night
        assert con.execute("SELECT count(*) FROM alerts").fetchone() == (1,)

    with connect(read_only=True) as con:      # `overnight report rollbacks`
        report = run_report(con, "rollbacks", {"dataset": DATASET})
    assert report[["rollback", "champion_version", "n_labelled"]].values.tolist() == [
        [True, degraded.model_version, after["n"]]]

    # serving follows the published manifest: the restored champion answers again
    assert manifest.read_aliases()["datasets"][DATASET]["champion"]["model_version"] == \
        "customer-v1"
    assert service.store.poll_once() == [f"{DATASET}:champion=customer-v1"]
    assert service.serve_and_label(seed=103, rows=5)["version"] == "customer-v1"

    # a re-run of the night changes nothing; the restored champion is not watched
    assert _night(night).rollback == decided.rollback
    assert _row(night)["decided_at"] == row["decided_at"] and len(_alerts("rollback")) == 1
    later = watch_champion(DATASET, night + timedelta(days=1))
    assert not later.rollback and "restored by a rollback" in later.reason
    assert get_alias(DATASET, "champion") == "customer-v1"


def test_noise_within_the_margin_does_not_roll_back(service: Service) -> None:
    before = service.serve_and_label(seed=201)
    retrained = _register(5)                   # as good a model, fitted on other rows
    _promote(service, retrained)
    after = service.serve_and_label(seed=202)
    assert after["version"] == retrained.model_version
    service.collect()
    drop = before["right"] / before["n"] - after["right"] / after["n"]
    margin = policy_for(DATASET).rollback_margin
    assert drop <= margin, f"the two good models differ by {drop}: not noise"

    night = TODAY + timedelta(days=3)
    decided = _night(night)
    assert decided.rollback is None
    row = _row(night)
    assert not row["rollback"] and "within the margin" in row["reason"]
    assert row["accuracy_drop"] == pytest.approx(drop, abs=1e-6)
    assert get_alias(DATASET, "champion") == retrained.model_version
    assert _alerts("rollback") == []


def test_the_cool_down_holds_then_lets_the_rollback_happen(service: Service) -> None:
    service.serve_and_label(seed=301)
    degraded = _register(2, scrambled=True)
    _promote(service, degraded)
    service.serve_and_label(seed=302)
    service.collect()
    assert policy_for(DATASET).rollback_cooldown_days == 1

    held = _night(TODAY)                                   # the night of the promotion
    row = _row(TODAY)
    assert held.rollback is None and row["cooldown_held"] and not row["rollback"]
    assert "cool-down" in row["reason"] and row["p_value"] < row["alpha"]
    assert row["switched_on"] == TODAY
    assert get_alias(DATASET, "champion") == degraded.model_version
    assert _alerts("rollback") == []

    assert _night(TODAY + timedelta(days=1)).rollback
    assert get_alias(DATASET, "champion") == "customer-v1"
    assert len(_alerts("rollback")) == 1


def test_an_artifact_refused_by_serving_is_rolled_back_at_once(service: Service) -> None:
    service.serve_and_label(seed=401, rows=5)
    tampered = _register(3)
    with Path(tampered.artifact_path).open("ab") as handle:
        handle.write(b"tampered")
    _promote(service, tampered)                  # the worker refuses it, keeps customer-v1
    assert service.serve_and_label(seed=402, rows=5)["version"] == "customer-v1"
    service.collect()
    assert len(_alerts("artifact_refused")) == 1

    decided = _night(TODAY)                 # within the cool-down: a refusal overrides it
    assert decided.rollback and "refused" in decided.rollback
    row = _row(TODAY)
    assert row["rollback"] and row["rule"] == "artifact_refused"
    assert tampered.model_version in row["refused"] and "sha256" in row["refused"]
    assert get_alias(DATASET, "champion") == "customer-v1"
    assert manifest.read_aliases()["datasets"][DATASET]["champion"]["model_version"] == \
        "customer-v1"
    assert len(_alerts("rollback")) == 1


def test_no_rollback_onto_a_previous_artifact_that_fails_too(service: Service) -> None:
    service.serve_and_label(seed=501, rows=5)
    first = service.store.get(DATASET).artifact_path          # customer-v1, held in memory
    tampered = _register(4)
    for path in (first, tampered.artifact_path):
        with Path(path).open("ab") as handle:
            handle.write(b"tampered")
    _promote(service, tampered)
    service.collect()

    decided = _night(TODAY)
    assert decided.rollback is None
    row = _row(TODAY)
    assert not row["rollback"] and row["rule"] == "artifact_refused"
    assert "a person must act" in row["reason"] and "customer-v1" in row["reason"]
    assert get_alias(DATASET, "champion") == tampered.model_version
    [alert] = _alerts("rollback")
    assert alert[1] == "critical" and "a person must act" in alert[2]


def test_counts_are_the_versions_labelled_predictions_as_champion(warehouse_path: Path) -> None:
    """Shadow and canary answers are not the champion's; the baseline takes the version's
    last days of labels; a night does not see labels of predictions made after it."""
    rows = [  # prediction id, version, role, alias, day, right
        ("a", "customer-v1", "served", "champion", 1, True),
        ("b", "customer-v1", "served", "champion", 1, False),
        ("c", "customer-v1", "batch", None, 3, True),
        ("d", "customer-v1", "served", "champion", 4, True),
        ("e", "customer-v1", "served", "champion", 5, False),
        ("f", "customer-v1", "shadow", "challenger", 5, False),
        ("g", "customer-v1", "served", "challenger", 5, False),
        ("h", "customer-v1", "served", "champion", 9, True),
        ("i", "customer-v1", "served", "champion", 5, None),          # no label
    ]
    start = date(2026, 12, 1)
    with transaction() as con:
        for pid, version, role, alias, day, right in rows:
            con.execute("INSERT INTO predictions (prediction_id, dataset, model_version, alias,"
                        " role, predicted_at, predicted_class) VALUES (?, ?, ?, ?, ?, ?, 'Low')",
                        [pid, DATASET, version, alias, role, start + timedelta(days=day)])
            if right is not None:
                con.execute("INSERT INTO feedback VALUES (?, ?, now(), 'test')",
                            [pid, "Low" if right else "High"])
    night = start + timedelta(days=5)
    with connect(read_only=True) as con:
        assert labelled_counts(con, DATASET, "customer-v1", night) == Counts(5, 3)
        assert labelled_counts(con, DATASET, "customer-v1", night, 3) == Counts(3, 2)
        assert labelled_counts(con, DATASET, "customer-v1", night, 1) == Counts(1, 0)
        assert labelled_counts(con, DATASET, "customer-v2", night) == Counts(0, 0)


def test_the_backtest_rolls_back_a_model_trained_on_a_passing_drift() -> None:
    """`overnight simulate` applies the rule: a champion retrained on a one-night concept
    drift is worse once the concept comes back, and is rolled back to the one before it."""
    from models.data.scenarios import ScenarioEntry, Timeline
    from monitoring.backtest import simulate

    start = date(2026, 11, 16)
    timeline = Timeline(start=start, datasets={DATASET: (
        ScenarioEntry(scenario="concept_drift", from_day=2, to_day=2),)})

    def run(rollback: bool) -> Any:
        [result] = simulate(DATASET, timeline, 5, start=start, rows=500, window=1,
                            policies=("triggers",), rollback=rollback)
        return result

    watched, unwatched = run(True), run(False)
    assert watched.rollbacks == 1 and unwatched.rollbacks == 0
    drifted, back = watched.nights[2], watched.nights[3]
    assert drifted.retrained and not drifted.rolled_back      # trained on the drifted night
    assert back.rolled_back and back.rollback_reason.startswith("Rollback to triggers-")
    assert watched.nights[4].accuracy > back.accuracy         # the restored champion serves
    assert "restored by a rollback" in watched.nights[4].rollback_reason
    assert watched.summary()["mean_accuracy"] > unwatched.summary()["mean_accuracy"]
