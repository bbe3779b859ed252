"""Tests of models.reports.model_report: full reports for a customer and a medical model."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from models.data.generators import customer, medical
from models.data.spec import feature_frame
from models.evaluation.explain import class_probabilities
from models.evaluation.metrics import evaluate
from models.learning.catalogue import build_model
from models.reports.model_report import build_model_report, generic_reading, markdown_table

DAY = date(2026, 3, 1)
HEADINGS = ("Summary", "Metrics", "Per-class metrics", "Plots", "Top features",
            "Segment profiles", "Confidence-based review", "Business reading")


def report_for(gen: ModuleType, out_dir: Path, **extra: Any) -> tuple[Path, dict[str, Any]]:
    """Fit logistic regression on a generated batch, evaluate on a held-out split, report."""
    spec = gen.SPEC
    frame = gen.generate(DAY, 1200, 5)
    X, y = feature_frame(frame, spec), frame[spec.target].to_numpy()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    model = build_model(spec, "logistic_regression").fit(X_train, y_train)
    metrics = evaluate(
        y_test, class_probabilities(model, X_test, spec.classes), spec.classes,
        cost_matrix=spec.cost_matrix, confidence_threshold=spec.confidence_threshold,
        y_pred=model.predict(X_test),
    )
    path = build_model_report(spec=spec, model=model, algorithm="logistic_regression",
                              metrics=metrics, X_test=X_test, y_test=y_test, out_dir=out_dir,
                              **extra)
    return path, metrics


@pytest.fixture(scope="module")
def customer_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    leaderboard = [{"algorithm": "logistic_regression", "f1_macro": 0.9, "fit_seconds": 0.2},
                   {"algorithm": "dummy", "f1_macro": 0.2, "fit_seconds": 0.01}]
    return report_for(customer, tmp_path_factory.mktemp("customer"), leaderboard=leaderboard)


@pytest.fixture(scope="module")
def medical_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    comparison = pd.DataFrame({"f1_macro": [0.91, 0.93], "total_cost": [90.0, 70.0]},
                              index=pd.Index(["none", "cost_sensitive"], name="imbalance"))
    return report_for(medical, tmp_path_factory.mktemp("medical"), comparison=comparison)


def business_reading(html_path: Path) -> str:
    markdown_text = html_path.with_name("report.md").read_text(encoding="utf-8")
    return markdown_text.split("## Business reading", 1)[1]


@pytest.mark.parametrize("which", ["customer_report", "medical_report"])
def test_report_has_sections_numbers_and_plots(which: str, request) -> None:
    path, metrics = request.getfixturevalue(which)
    assert path.name == "report.html" and path.with_name("report.md").exists()
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "<table>" in page
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in page
    assert f"accuracy {metrics['accuracy']:.3f}" in page
    images = re.findall(r'<img[^>]*src="([^"]+)"', page)
    assert len(images) == 4
    for image in images:
        assert not Path(image).is_absolute() and (path.parent / image).is_file()


def test_optional_tables_appear_only_when_given(customer_report, medical_report) -> None:
    customer_page = customer_report[0].read_text(encoding="utf-8")
    medical_page = medical_report[0].read_text(encoding="utf-8")
    assert "<h2>Leaderboard</h2>" in customer_page and "fit_seconds" in customer_page
    assert "<h2>Imbalance techniques</h2>" not in customer_page
    assert "<h2>Imbalance techniques</h2>" in medical_page and "cost_sensitive" in medical_page
    assert "<h2>Leaderboard</h2>" not in medical_page


def test_customer_reading_targets_the_high_segment(customer_report) -> None:
    path, metrics = customer_report
    reading = business_reading(path)
    assert "High segment" in reading
    assert f"{metrics['per_class']['High']['precision']:.3f}" in reading
    assert "`annual_income`" in reading and "`spending_score`" in reading


def test_medical_reading_names_rare_misses_and_their_cost(medical_report) -> None:
    path, metrics = medical_report
    reading = business_reading(path)
    for rare in ("Rare Disease C", "Very Rare Disease D"):
        sensitivity = metrics["per_class"][rare]["sensitivity"]
        assert f"**{rare}**: sensitivity {sensitivity:.3f}" in reading
    assert re.search(r"cost(ing)? [\d,]+", reading)
    assert "total cost of" in reading


def test_generic_reading_names_weakest_class_and_common_confusion() -> None:
    metrics = {
        "classes": ["a", "b", "c"],
        "per_class": {
            "a": {"f1": 0.9, "precision": 0.9, "recall": 0.9, "support": 10},
            "b": {"f1": 0.4, "precision": 0.5, "recall": 0.3, "support": 10},
            "c": {"f1": 0.8, "precision": 0.8, "recall": 0.8, "support": 10},
        },
        "confusion_matrix": [[9, 1, 0], [6, 3, 1], [1, 1, 8]],
    }
    reading = generic_reading(metrics)
    assert "**b** (F1 0.400" in reading
    assert "true **b** predicted as **a**: 6 rows (60.0% of b)" in reading


def test_markdown_table_aligns_numbers_and_escapes_pipes() -> None:
    table = markdown_table([{"name": "x|y", "value": 0.12345, "n": None}])
    assert table.splitlines() == ["| name | value | n |", "|:---|---:|---:|",
                                  "| x\\|y | 0.123 | n/a |"]


def test_the_business_reading_follows_the_specs_focus_class_not_class_names(
        tmp_path: Path) -> None:
    """The same customer model: with `focus_class` the reading targets that class (any class
    name works), without it the class names alone choose nothing (the generic reading)."""
    from models.data.spec import DatasetSpec

    no_focus = customer.SPEC.model_copy(update={"focus_class": None})
    medium = customer.SPEC.model_copy(update={"focus_class": "Medium"})
    readings = {}
    for name, spec in (("none", no_focus), ("medium", medium)):
        gen = ModuleType(f"customer_{name}")
        gen.SPEC, gen.generate = spec, customer.generate  # type: ignore[attr-defined]
        path, _ = report_for(gen, tmp_path / name)
        readings[name] = business_reading(path)
    assert "High segment" not in readings["none"] and "segment" not in readings["none"]
    assert "**Target the Medium segment.**" in readings["medium"]
    with pytest.raises(ValueError, match="focus_class 'VIP' is not one of the classes"):
        DatasetSpec.model_validate({**customer.SPEC.model_dump(), "focus_class": "VIP"})
