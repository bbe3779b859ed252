"""Tests of models.reports.model_report: full reports for a customer and a medical model."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
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
    assert len(images) == 5                   # four evaluation plots and the decision regions
    assert "decision_boundary.png" in images
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


def test_every_customer_segment_gets_its_traits_reliability_and_action(customer_report) -> None:
    path, metrics = customer_report
    every = business_reading(path).split("### Every segment", 1)[1]
    for name in customer.SPEC.classes:
        line = next(x for x in every.splitlines() if x.startswith(f"- **{name}**"))
        assert customer.SPEC.class_actions[name] in line
        precision = metrics["per_class"][name]["precision"]
        assert f"{round(100 * precision)} of every 100 rows put here" in line
    high = next(x for x in every.splitlines() if x.startswith("- **High**"))
    low = next(x for x in every.splitlines() if x.startswith("- **Low**"))
    assert "higher `annual_income`" in high and "lower `annual_income`" in low


def test_profiles_show_mean_median_and_spread(customer_report) -> None:
    text = customer_report[0].with_name("report.md").read_text(encoding="utf-8")
    profiles = text.split("## Segment profiles", 1)[1].split("\n## ", 1)[0]
    row = next(x for x in profiles.splitlines() if x.startswith("| `annual_income`"))
    assert row.count(" / ") == 3 and row.count("±") == 3        # one cell per segment


def test_decision_regions_follow_the_model_on_the_plane() -> None:
    """The regions are the model's own classes: a grid point's region is what the model
    predicts for the row it maps back to, and on the demo data the plane separates Low from
    High (both regions exist, and most rows fall in the region of their predicted class)."""
    from models.evaluation.boundary import boundary_plane

    spec = customer.SPEC
    frame = customer.generate(DAY, 600, 3)
    X, y = feature_frame(frame, spec), frame[spec.target].to_numpy()
    model = build_model(spec, "logistic_regression").fit(X, y)
    plane = boundary_plane(model, X, y, spec, steps=40)
    assert plane is not None and plane.regions.shape == (40, 40)
    assert 0.3 < plane.explained <= 1.0
    assert {0, 2} <= set(plane.regions.ravel().tolist())
    column = np.clip(np.searchsorted(plane.xs, plane.points[:, 0]), 0, 39)
    row = np.clip(np.searchsorted(plane.ys, plane.points[:, 1]), 0, 39)
    same = plane.regions[row, column] == plane.predicted
    assert same.mean() > 0.6                  # a slice: not every row, but most
    assert (plane.predicted == np.array([spec.classes.index(c) for c in model.predict(X)])).all()


def test_no_plane_for_text_or_a_single_number() -> None:
    from models.data.generators import news
    from models.evaluation.boundary import boundary_plane

    frame = news.generate(DAY, 60, 1)
    assert boundary_plane(None, feature_frame(frame, news.SPEC), frame[news.SPEC.target],
                          news.SPEC) is None


def test_class_actions_must_name_classes() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not classes: \\['Gold'\\]"):
        customer.SPEC.model_validate({**customer.SPEC.model_dump(),
                                      "class_actions": {"Gold": "celebrate"}})


HOSTILE = "<img src=x onerror=alert(1)>"


def test_users_values_in_a_report_are_text_never_markup(tmp_path: Path) -> None:
    """A category value from a user's file reaches the segment profiles: it must show as
    the text it is, not run as markup in the reader's browser."""
    spec = customer.SPEC.model_copy(update={"features": tuple(
        f.model_copy(update={"categories": None}) if f.name == "region" else f
        for f in customer.SPEC.features)})
    frame = customer.generate(DAY, 400, 2)
    frame["region"] = HOSTILE
    X, y = feature_frame(frame, spec), frame[spec.target].to_numpy()
    model = build_model(spec, "logistic_regression").fit(X, y)
    metrics = evaluate(y, class_probabilities(model, X, spec.classes), spec.classes,
                       y_pred=model.predict(X))
    page = build_model_report(spec=spec, model=model, algorithm="logistic_regression",
                              metrics=metrics, X_test=X, y_test=y, out_dir=tmp_path
                              ).read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img src=x" not in page and "onerror=alert" not in page.replace("&lt;img src=x "
                                                                             "onerror=alert", "")


def test_markdown_links_cannot_carry_script() -> None:
    from models.reports.safe_html import markdown_html

    html = markdown_html("[open](javascript:alert(1)) <script>x()</script> ![p](plot.png)")
    assert "javascript:" not in html and "<script>" not in html
    assert '<img alt="p" src="plot.png">' in html


def test_confusions_quote_real_texts_and_count_by_hand() -> None:
    from models.data.generators import news
    from models.reports.safe_html import markdown_html
    from models.reports.text_insight import confusion_pairs, confusions_section

    truth = ["Sports", "Sports", "Sports", "Health", "Health", "Politics"]
    guess = ["Health", "Health", "Sports", "Sports", "Health", "Politics"]
    assert confusion_pairs(truth, guess) == [("Sports", "Health", 2), ("Health", "Sports", 1)]
    X = pd.DataFrame({"headline": ["[win](javascript:x) *cup*", "b", "c", "d", "e", "f"],
                      "body": ["" for _ in truth]})
    text = confusions_section(news.SPEC, X, truth, guess)
    assert "**Sports** read as **Health**: 2 articles (67% of Sports)" in text
    html = markdown_html(text)
    assert "javascript:" not in html.replace("(javascript:x)", "")
    assert "<a " not in html and "[win](javascript:x) *cup*" in html
