"""Daily performance over late labels, on a real warehouse file."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score

from monitoring.performance import (
    PerformanceError,
    daily_performance,
    performance_on,
    record_batch_labels,
)
from warehouse import connect, transaction

DAY1, DAY2 = date(2026, 6, 1), date(2026, 6, 2)
LATER = datetime(2026, 6, 5, 9, 0)

# prediction id, dataset, model version, role, predicted at, predicted class, label (None: none)
PREDICTIONS = [
    ("a1", "customer", "customer-v1", "served", datetime(2026, 6, 1, 8), "Low", "Low"),
    ("a2", "customer", "customer-v1", "served", datetime(2026, 6, 1, 9), "Medium", "Low"),
    ("a3", "customer", "customer-v1", "served", datetime(2026, 6, 1, 10), "High", "High"),
    ("a4", "customer", "customer-v1", "served", datetime(2026, 6, 1, 11), "Medium", None),
    ("a5", "customer", "customer-v1", "served", datetime(2026, 6, 1, 12), "Medium", "Medium"),
    ("a6", "customer", "customer-v1", "served", datetime(2026, 6, 1, 23), "Low", "Medium"),
    ("a7", "customer", "customer-v1", "served", datetime(2026, 6, 1, 23), "Low", None),
    ("s1", "customer", "customer-v2", "shadow", datetime(2026, 6, 1, 8), "High", "Low"),
    ("b1", "customer", "customer-v1", "served", datetime(2026, 6, 2, 8), "High", "High"),
    ("b2", "customer", "customer-v1", "served", datetime(2026, 6, 2, 9), "High", "Medium"),
    ("b3", "customer", "customer-v1", "served", datetime(2026, 6, 2, 9), "Low", None),
    ("c1", "customer", "customer-v2", "served", datetime(2026, 6, 2, 10), "Low", "Low"),
    ("m1", "medical", "medical-v1", "served", datetime(2026, 6, 1, 8), "Healthy", "Healthy"),
]


@pytest.fixture
def predictions(warehouse_path: Path) -> Path:
    with transaction() as con:
        for pid, dataset, version, role, at, predicted, label in PREDICTIONS:
            con.execute("INSERT INTO predictions (prediction_id, dataset, model_version, role,"
                        " predicted_at, predicted_class) VALUES (?, ?, ?, ?, ?, ?)",
                        [pid, dataset, version, role, at, predicted])
            if label is not None:
                con.execute("INSERT INTO feedback VALUES (?, ?, ?, 'user')", [pid, label, LATER])
    return warehouse_path


def _expected(ids: list[str], late: dict[str, str] | None = None) -> dict:
    """The figures computed by hand with scikit-learn (`late`: labels added afterwards)."""
    rows = {p[0]: p for p in PREDICTIONS}
    predicted = [rows[i][5] for i in ids]
    labels = [str((late or {}).get(i) or rows[i][6]) for i in ids]
    seen = sorted(set(labels))
    return {
        "n_labelled": len(ids),
        "accuracy": accuracy_score(labels, predicted),
        "f1_macro": f1_score(labels, predicted, average="macro", zero_division=0),
        "recall_per_class": dict(zip(seen, recall_score(labels, predicted, labels=seen,
                                                        average=None), strict=True)),
    }


def _check(row: dict | None, expected: dict) -> None:
    assert row is not None
    assert row["n_labelled"] == expected["n_labelled"]
    assert row["accuracy"] == pytest.approx(expected["accuracy"])
    assert row["f1_macro"] == pytest.approx(expected["f1_macro"])
    assert row["recall_per_class"] == pytest.approx(expected["recall_per_class"])


def test_daily_figures_over_the_labelled_subset(predictions: Path) -> None:
    frame = daily_performance("customer")
    assert list(frame[["day", "model_version"]].itertuples(index=False, name=None)) == [
        (DAY1, "customer-v1"), (DAY2, "customer-v1"), (DAY2, "customer-v2")]
    rows = frame.to_dict("records")
    _check(rows[0], _expected(["a1", "a2", "a3", "a5", "a6"]))   # a4, a7 unlabelled; s1 shadow
    _check(rows[1], _expected(["b1", "b2"]))
    _check(rows[2], _expected(["c1"]))
    assert rows[0]["recall_per_class"] == pytest.approx({"High": 1.0, "Low": 0.5, "Medium": 0.5})


def test_filters_and_one_day_figures(predictions: Path) -> None:
    assert daily_performance("customer", start=DAY2)["day"].tolist() == [DAY2, DAY2]
    assert daily_performance("customer", end=DAY1)["day"].tolist() == [DAY1]
    only_v2 = daily_performance("customer", model_version="customer-v2")
    assert only_v2["model_version"].tolist() == ["customer-v2"]
    _check(performance_on("customer", "customer-v1", DAY2), _expected(["b1", "b2"]))
    assert performance_on("customer", "customer-v2", DAY1) is None      # shadow only
    assert performance_on("customer", "customer-v1", date(2026, 6, 3)) is None
    assert daily_performance("news").empty


def test_late_feedback_counts_on_the_day_of_the_prediction(predictions: Path) -> None:
    with transaction() as con:
        con.execute("INSERT INTO feedback VALUES ('a4', 'Medium', ?, 'user')",
                    [datetime(2026, 6, 9)])
    _check(performance_on("customer", "customer-v1", DAY1),
           _expected(["a1", "a2", "a3", "a4", "a5", "a6"], late={"a4": "Medium"}))
    assert performance_on("customer", "customer-v1", date(2026, 6, 9)) is None


def _counts() -> tuple[int, int]:
    with connect(read_only=True) as con:
        predictions = con.execute("SELECT count(*) FROM predictions").fetchone()
        feedback = con.execute("SELECT count(*) FROM feedback").fetchone()
    assert predictions is not None and feedback is not None
    return predictions[0], feedback[0]


def test_record_batch_labels_is_idempotent(warehouse_path: Path) -> None:
    predicted = ["Low", "Medium", "High", "High", "Low"]
    labels = ["Low", None, "High", "Medium", "Low"]
    night = datetime(2026, 6, 3, 1, 30)
    for _ in range(2):
        assert record_batch_labels("customer", "customer-2026-06-03", "customer-v1",
                                   predicted, labels, night) == 4
        assert _counts() == (5, 4)
    figures = performance_on("customer", "customer-v1", night.date())
    assert figures is not None and figures["n_labelled"] == 4
    assert figures["accuracy"] == pytest.approx(0.75)
    with connect(read_only=True) as con:
        row = con.execute("SELECT role, request_id, predicted_class FROM predictions"
                          " WHERE prediction_id = 'customer-2026-06-03:2'").fetchone()
        source = con.execute("SELECT DISTINCT source FROM feedback").fetchall()
    assert row == ("batch", "customer-2026-06-03", "High") and source == [("batch",)]

    # a re-run with another champion and fewer rows replaces the batch's rows entirely
    record_batch_labels("customer", "customer-2026-06-03", "customer-v2", ["Low", "Low"],
                        ["Low", "High"], night.date())
    assert _counts() == (2, 2)
    assert performance_on("customer", "customer-v1", night.date()) is None
    replaced = performance_on("customer", "customer-v2", night.date())
    assert replaced is not None and replaced["accuracy"] == 0.5


def test_record_batch_labels_refuses_mismatched_lengths(warehouse_path: Path) -> None:
    with pytest.raises(PerformanceError, match="same length"):
        record_batch_labels("customer", "b", "customer-v1", ["Low"], ["Low", "High"], DAY1)
    assert _counts() == (0, 0)
