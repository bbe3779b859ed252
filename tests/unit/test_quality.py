import numpy as np
import pandas as pd

from models.data.generators import customer, news
from models.data.quality import QualityThresholds, quarantine_reason, run_quality_checks
from models.data.spec import DatasetSpec, FeatureSpec

DAY = pd.Timestamp("2026-02-01").date()


def _by_name(results):
    return {r.name: r for r in results}


def test_clean_batch_passes_every_check() -> None:
    results = run_quality_checks(customer.generate(DAY, 300, 1), customer.SPEC)
    assert {r.name for r in results} == {"schema", "row_count", "missing_values", "out_of_range",
                                         "non_finite", "duplicate_rows", "label_presence",
                                         "unknown_labels", "class_distribution"}
    assert quarantine_reason(results) is None


def test_thirty_percent_missing_is_blocking_and_named() -> None:
    frame = customer.generate(DAY, 300, 1)
    frame.loc[frame.sample(frac=0.3, random_state=0).index, "age"] = np.nan
    results = _by_name(run_quality_checks(frame, customer.SPEC))
    assert not results["missing_values"].passed and results["missing_values"].blocking
    assert results["missing_values"].observed == 0.3
    reason = quarantine_reason(list(results.values()))
    assert reason is not None and "missing_values" in reason and "'age'" in reason


def test_blank_text_counts_as_missing() -> None:
    frame = news.generate(DAY, 100, 1)
    frame.loc[:39, "body"] = "   "
    results = _by_name(run_quality_checks(frame, news.SPEC))
    assert results["missing_values"].observed == 0.4


def test_out_of_range_unknown_category_and_labels() -> None:
    frame = customer.generate(DAY, 200, 1)
    frame.loc[:19, "age"] = 150
    frame.loc[20:21, "region"] = "mars"
    frame.loc[22, "segment"] = "Platinum"
    results = _by_name(run_quality_checks(frame, customer.SPEC))
    assert not results["out_of_range"].passed
    assert "age: 20" in results["out_of_range"].detail and "region: 2" in results[
        "out_of_range"].detail
    assert not results["unknown_labels"].passed and "Platinum" in results["unknown_labels"].detail


def test_duplicates_row_count_and_schema() -> None:
    frame = customer.generate(DAY, 100, 1)
    doubled = pd.concat([frame, frame, frame])
    assert not _by_name(run_quality_checks(doubled, customer.SPEC))["duplicate_rows"].passed
    tiny = _by_name(run_quality_checks(frame.head(5), customer.SPEC))
    assert not tiny["row_count"].passed
    broken = run_quality_checks(frame.drop(columns="age").assign(colour="red"), customer.SPEC)
    assert [r.name for r in broken] == ["schema"]
    assert "missing columns: age" in broken[0].detail and "unknown columns: colour" in broken[
        0].detail


def test_label_shift_warns_without_blocking() -> None:
    frame = customer.generate(DAY, 400, 1)
    frame["segment"] = "High"
    results = _by_name(run_quality_checks(frame, customer.SPEC, QualityThresholds()))
    assert not results["class_distribution"].passed and not results["class_distribution"].blocking
    unlabelled = customer.generate(DAY, 400, 1).assign(segment=None)
    results = _by_name(run_quality_checks(unlabelled, customer.SPEC))
    assert not results["label_presence"].passed and not results["label_presence"].blocking
    assert quarantine_reason(list(results.values())) is None


def test_infinities_always_block_with_counts_even_without_a_range() -> None:
    spec = DatasetSpec(name="inf", kind="tabular", target="y", classes=("a", "b"), features=(
        FeatureSpec(name="free", type="numeric"),
        FeatureSpec(name="bounded", type="numeric", min=0, max=10)))
    frame = pd.DataFrame({"free": [1.0] * 97 + [np.inf, -np.inf, 2.0],
                          "bounded": [5.0] * 99 + [np.inf], "y": ["a", "b"] * 50})
    results = _by_name(run_quality_checks(frame, spec))
    check = results["non_finite"]
    assert not check.passed and check.blocking and check.observed == 3
    assert "'free': 2" in check.detail and "'bounded': 1" in check.detail
    assert results["out_of_range"].passed           # one share, not counted twice
    reason = quarantine_reason(list(results.values()))
    assert reason is not None and reason.startswith("non_finite: 3 infinite value(s)")
    finite = _by_name(run_quality_checks(frame.replace([np.inf, -np.inf], 1.0), spec))
    assert finite["non_finite"].passed
