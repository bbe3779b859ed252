"""Drift reports on generated batches, a real warehouse and real registered models.

Models are fitted once per module (pure, no warehouse); each test registers them into its
own data home, stores its batches with `generate_batch` and runs the night's drift report.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.data.batches import generate_batch, store_batch
from models.data.datasets import BUILTIN
from models.data.generators.base import STABLE, DriftState
from models.data.spec import feature_frame
from models.learning.catalogue import build_model
from models.registry.artifacts import PROFILE_FILE
from models.registry.versions import register_model
from models.reports.production import save_reference
from monitoring.drift.evidently_report import evidently_verdict
from monitoring.drift.nightly import compute_drift, run_drift_report
from monitoring.drift.profile import (
    build_profile,
    load_profile,
    prediction_column,
    profile_for_version,
    save_profile,
)
from monitoring.drift.statistics import wasserstein_distance_sorted
from monitoring.drift.verdict import DriftError
from warehouse import connect

TRAIN_DAY = date(2026, 3, 1)
NIGHT = date(2026, 3, 10)
TRAIN_ROWS = {"customer": 2000, "medical": 2000, "news": 1200}
NIGHT_ROWS = 1500


@pytest.fixture(scope="module")
def trained() -> dict[str, tuple[Any, pd.DataFrame]]:
    """One logistic regression per dataset and its training frame (fitted once)."""
    out = {}
    for name, rows in TRAIN_ROWS.items():
        entry = BUILTIN[name]
        frame = entry.generate(TRAIN_DAY, rows, 7, STABLE)
        model = build_model(entry.spec, "logistic_regression").fit(
            feature_frame(frame, entry.spec), frame[entry.spec.target])
        out[name] = (model, frame)
    return out


def register(dataset: str, trained: dict[str, tuple[Any, pd.DataFrame]], tmp: Path) -> str:
    """Register the fitted model of a dataset with its reference data; return its version."""
    model, frame = trained[dataset]
    spec = BUILTIN[dataset].spec
    reference = save_reference(frame, spec, tmp / "reference.parquet")
    version = register_model(model, spec, algorithm="logistic_regression", metrics={},
                             training_batches=[f"{dataset}-train"],
                             attachments={"reference.parquet": reference})
    return version.model_version


def night(dataset: str, drift: DriftState = STABLE, scenario: str = "stable",
          day: date = NIGHT) -> str:
    return generate_batch(dataset, day, n_rows=NIGHT_ROWS, seed=11, drift=drift,
                          scenario=scenario).batch_id


def stored_reports() -> tuple[list[tuple[Any, ...]], int]:
    with connect(read_only=True) as con:
        reports = con.execute("SELECT report_id, batch_id, model_version, n_columns, n_drifted,"
                              " dataset_drift, html_path FROM drift_reports").fetchall()
        columns = con.execute("SELECT count(*) FROM drift_columns").fetchone()[0]
    return reports, columns


# --------------------------------------------------------------------------- the fast path


@pytest.mark.parametrize("dataset", ["customer", "medical"])
@pytest.mark.parametrize("reference_rows", [5000, 800])
def test_verdicts_agree_with_evidently(dataset: str, reference_rows: int) -> None:
    """Per column: same method, same score, same verdict; and the same dataset verdict.

    5000 reference rows exercise Wasserstein and Jensen-Shannon; 800 rows (<= 1000) the
    p-value tests Evidently switches to: KS, chi-square and the Z-test.
    """
    entry = BUILTIN[dataset]
    reference = entry.generate(TRAIN_DAY, reference_rows, 3, STABLE)
    current = entry.generate(NIGHT, 5000, 4, DriftState(covariate_shift=0.6, label_shift=0.5))
    ours = compute_drift(current, build_profile(reference, entry.spec), entry.spec)
    theirs = {c.column: c for c in evidently_verdict(reference, current, entry.spec).columns}
    assert set(theirs) == {c.column for c in ours.columns}
    for column in ours.columns:
        other = theirs[column.column]
        assert column.method == other.method, column.column
        assert column.score == pytest.approx(other.score, rel=1e-6, abs=1e-12), column.column
        assert column.drifted == other.drifted, column.column
    assert ours.drifted_columns                    # the case is not trivially all-stable
    expected_share = sum(c.drifted for c in theirs.values()) / len(theirs)
    assert ours.share_drifted == pytest.approx(expected_share)


def test_wasserstein_matches_scipy() -> None:
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(0)
    reference = np.sort(rng.normal(size=700))
    for current in (rng.normal(0.3, 2, 5000), np.round(rng.normal(size=3000)), reference[:10]):
        assert wasserstein_distance_sorted(reference, current) == pytest.approx(
            wasserstein_distance(reference, current), rel=1e-9)


def test_profile_round_trip(tmp_path: Path, trained: dict[str, tuple[Any, pd.DataFrame]]) -> None:
    model, frame = trained["news"]
    spec = BUILTIN["news"].spec
    profile = build_profile(frame, spec, model)
    again = load_profile(save_profile(profile, tmp_path / PROFILE_FILE))
    assert again.prediction == profile.prediction and sum(profile.prediction.values()) == len(
        frame)
    assert again.text["body"].vocabulary == profile.text["body"].vocabulary
    np.testing.assert_array_equal(again.text["body"].word_counts, profile.text["body"].word_counts)
    current = BUILTIN["news"].generate(NIGHT, 500, 5, STABLE)
    assert compute_drift(current, again, spec) == compute_drift(current, profile, spec)


# --------------------------------------------------------------------------- the night


def test_stable_night_is_stored_with_html_and_is_idempotent(
        warehouse_path: Path, tmp_path: Path, trained: dict[str, tuple[Any, pd.DataFrame]]
) -> None:
    version = register("customer", trained, tmp_path)
    batch = night("customer")
    summary = run_drift_report("customer", batch, version, night_date=NIGHT, sample_rows=1000)

    assert not summary.dataset_drift and summary.drifted_columns == []
    assert summary.n_current == NIGHT_ROWS and summary.n_columns == 10   # 9 features + prediction
    assert summary.column("prediction").column_type == "prediction"
    html = Path(summary.html_path)
    assert html == warehouse_path.parent / "reports" / "drift" / "customer" / "2026-03-10.html"
    text = html.read_text()
    assert "no dataset drift" in text and "Dataset Drift" in text and "Accuracy" in text
    assert profile_path(version).exists()                   # the profile was cached

    reports, n_columns = stored_reports()
    assert reports == [(f"{batch}:{version}", batch, version, 10, 0, False, str(html))]
    assert n_columns == 10
    run_drift_report("customer", batch, version, night_date=NIGHT, sample_rows=1000)
    assert stored_reports() == (reports, n_columns)


def profile_path(model_version: str) -> Path:
    from models.registry.versions import get_version

    return get_version(model_version).artifact_path.parent / PROFILE_FILE


@pytest.mark.parametrize(("dataset", "drift", "expected"), [
    ("customer", DriftState(covariate_shift=1.0), {"age", "annual_income"}),
    ("medical", DriftState(covariate_shift=1.0), {"age", "bmi"}),
    ("news", DriftState(covariate_shift=1.0), {"body:word_count"}),
    ("news", DriftState(new_vocabulary=1.0), {"body:oov_share", "headline:oov_share"}),
], ids=["customer-covariate", "medical-covariate", "news-covariate", "news-vocabulary"])
def test_each_scenario_is_detected_on_the_columns_it_shifts(
        warehouse_path: Path, tmp_path: Path, trained: dict[str, tuple[Any, pd.DataFrame]],
        dataset: str, drift: DriftState, expected: set[str]) -> None:
    version = register(dataset, trained, tmp_path)
    stable = run_drift_report(dataset, night(dataset, day=date(2026, 3, 9)), version,
                              night_date=date(2026, 3, 9), sample_rows=500)
    shifted = run_drift_report(dataset, night(dataset, drift, "shifted"), version,
                               night_date=NIGHT, sample_rows=500)
    assert stable.drifted_columns == []
    features = {c for c in shifted.drifted_columns if c != "prediction"}
    assert features == expected
    for name in expected:
        column = shifted.column(name)
        assert column.score >= column.threshold and stable.column(name).score < column.threshold


@pytest.mark.parametrize("dataset", ["customer", "medical", "news"])
def test_label_shift_shows_in_prediction_drift(
        trained: dict[str, tuple[Any, pd.DataFrame]], dataset: str) -> None:
    """The champion's predicted-class distribution moves against its reference predictions."""
    model, frame = trained[dataset]
    spec = BUILTIN[dataset].spec
    profile = build_profile(frame, spec, model)
    verdicts = {}
    for name, drift in (("stable", STABLE), ("label", DriftState(label_shift=1.0))):
        current = BUILTIN[dataset].generate(NIGHT, 2000, 13, drift)
        current[prediction_column(spec)] = model.predict(feature_frame(current, spec))
        verdicts[name] = compute_drift(current, profile, spec).column("prediction")
    assert verdicts["stable"].method == "jensenshannon" and not verdicts["stable"].drifted
    assert verdicts["label"].drifted and verdicts["label"].score > 2 * verdicts["stable"].score


# --------------------------------------------------------------------------- failures


def test_bad_batches_fail_clearly_and_write_nothing(
        warehouse_path: Path, tmp_path: Path, trained: dict[str, tuple[Any, pd.DataFrame]]
) -> None:
    version = register("medical", trained, tmp_path)
    spec = BUILTIN["medical"].spec
    frame = BUILTIN["medical"].generate(NIGHT, 200, 5, STABLE)
    cases = {
        "empty": (frame.iloc[:0], r"no rows to compare"),
        "missing": (frame.drop(columns=["bmi"]), r"no rows .*missing columns: bmi"),
        "all_nan": (frame.assign(glucose=np.nan), r"glucose .*no values \(all missing\)"),
    }
    for day, (name, (batch, message)) in enumerate(cases.items(), start=1):
        stored = store_batch(spec, batch, batch_id=f"medical-{name}", batch_date=date(2026, 4, day),
                             source="generator")
        with pytest.raises(DriftError, match=message):
            run_drift_report("medical", stored.batch_id, version, night_date=date(2026, 4, day))
    with pytest.raises(DriftError, match="no reference"):
        run_drift_report("medical", "medical-empty", None, night_date=NIGHT)
    with pytest.raises(DriftError, match="no batch"):
        run_drift_report("medical", "medical-nope", version, night_date=NIGHT)
    assert stored_reports() == ([], 0)
    assert not (warehouse_path.parent / "reports" / "drift" / "medical").exists()


def test_compute_drift_names_every_problem(trained: dict[str, tuple[Any, pd.DataFrame]]) -> None:
    frame = trained["customer"][1]
    spec = BUILTIN["customer"].spec
    profile = build_profile(frame, spec)
    current = frame.drop(columns=["age"]).assign(region=None, annual_income=np.inf)
    with pytest.raises(DriftError) as caught:
        compute_drift(current, profile, spec)
    message = str(caught.value)
    assert "lacks column(s) age" in message
    assert "annual_income, region of the batch have no values" in message
    with pytest.raises(DriftError, match="the batch is empty"):
        compute_drift(frame.iloc[:0], profile, spec)


def test_profile_for_version_builds_once_and_reuses(
        warehouse_path: Path, tmp_path: Path, trained: dict[str, tuple[Any, pd.DataFrame]]
) -> None:
    version = register("customer", trained, tmp_path)
    path = profile_path(version)
    assert not path.exists()
    first = profile_for_version(version)
    assert path.exists() and first.prediction and first.model_version == version
    stamp = path.stat().st_mtime_ns
    second = profile_for_version(version)
    assert path.stat().st_mtime_ns == stamp and second.created_at == first.created_at


def test_html_keeps_the_drift_section_when_evidently_cannot_score_labels(tmp_path: Path) -> None:
    """A binary task without probabilities: Evidently's classification fails, drift stays."""
    from models.data.spec import DatasetSpec, FeatureSpec
    from monitoring.drift.evidently_report import render_html

    spec = DatasetSpec(name="pairs", kind="tabular", target="label", classes=("no", "yes"),
                       features=(FeatureSpec(name="x", type="numeric"),))
    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"x": rng.normal(size=600), "label": rng.choice(spec.classes, 600),
                            "prediction": rng.choice(spec.classes, 600)}) for _ in range(2)]
    summary = compute_drift(frames[1], build_profile(frames[0], spec), spec)
    text = render_html(frames[0], frames[1], spec, summary, tmp_path / "x.html").read_text()
    assert "classification section was left out" in text and "Dataset Drift" in text
