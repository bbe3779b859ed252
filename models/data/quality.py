"""Quality checks run on every batch before it may be trained on.

Each check returns what it observed, the threshold it compared against and whether it is
blocking; a batch that fails any blocking check is quarantined: kept in the warehouse,
flagged with the reason, and never trained on. Checks are pure functions of a frame and its
spec, so they are tested without a warehouse.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from models.data.spec import DatasetSpec


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of the checks; a batch past a blocking limit is quarantined."""

    min_rows: int = 20
    max_missing_share: float = 0.20        # per column
    max_out_of_range_share: float = 0.05   # per column
    max_duplicate_share: float = 0.20
    max_class_shift: float = 0.25          # total variation distance from the spec's shares


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    blocking: bool
    observed: float | None
    threshold: float | None
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def missing_mask(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Missing cells of the feature columns; blank text counts as missing."""
    mask = frame[spec.feature_names].isna()
    for column in spec.features_of_type("text"):
        mask[column] |= frame[column].astype("string").str.strip().fillna("").eq("")
    return mask


def _schema(frame: pd.DataFrame, spec: DatasetSpec) -> CheckResult:
    expected = [*spec.feature_names, spec.target]
    missing = [c for c in expected if c not in frame.columns]
    unknown = [c for c in frame.columns if c not in expected]
    problems = []
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown columns: {', '.join(map(str, unknown))}")
    return CheckResult("schema", not problems, True, float(len(missing) + len(unknown)), 0.0,
                       "; ".join(problems) or "columns match the spec")


def _row_count(frame: pd.DataFrame, limits: QualityThresholds) -> CheckResult:
    n = len(frame)
    return CheckResult("row_count", bool(n >= limits.min_rows), True, float(n),
                       float(limits.min_rows), f"{n} rows (at least {limits.min_rows} needed)")


def _missing(frame: pd.DataFrame, spec: DatasetSpec, limits: QualityThresholds) -> CheckResult:
    shares = missing_mask(frame, spec).mean() if len(frame) else pd.Series(0.0, spec.feature_names)
    worst = str(shares.idxmax())
    share = float(shares.max())
    ok = bool(share <= limits.max_missing_share)
    detail = (f"{share:.1%} of {worst!r} is missing (limit {limits.max_missing_share:.0%})"
              if share else "no missing values")
    return CheckResult("missing_values", ok, True, share, limits.max_missing_share, detail)


def _out_of_range(frame: pd.DataFrame, spec: DatasetSpec,
                  limits: QualityThresholds) -> CheckResult:
    """Share of values outside the spec's range or categories, for the worst column."""
    shares: dict[str, float] = {}
    counts: dict[str, int] = {}
    for feature in spec.features:
        values = frame[feature.name].dropna()
        if feature.type == "numeric" and (feature.min is not None or feature.max is not None):
            numbers = values.astype(float)
            numbers = numbers[np.isfinite(numbers)]     # infinities are `non_finite`'s
            low = numbers < feature.min if feature.min is not None else False
            high = numbers > feature.max if feature.max is not None else False
            outside = low | high
        elif feature.type == "categorical" and feature.categories:
            outside = ~values.astype(str).isin(feature.categories)
        else:
            continue
        n_bad = int(np.sum(outside))
        if n_bad:
            counts[feature.name] = n_bad
            shares[feature.name] = n_bad / len(values)
    worst = max(shares.values(), default=0.0)
    detail = ", ".join(f"{name}: {n}" for name, n in counts.items())
    return CheckResult("out_of_range", bool(worst <= limits.max_out_of_range_share), True, worst,
                       limits.max_out_of_range_share,
                       f"values out of range ({detail}); worst column {worst:.1%}" if counts
                       else "all values in range")


def _non_finite(frame: pd.DataFrame, spec: DatasetSpec) -> CheckResult:
    """inf and -inf in numeric columns: always blocking, with or without a range in the spec
    (no model can learn from them, and the serving API refuses them anyway)."""
    counts: dict[str, int] = {}
    for name in spec.features_of_type("numeric"):
        numbers = pd.to_numeric(frame[name], errors="coerce").astype(float).to_numpy()
        n_bad = int(np.isinf(numbers).sum())
        if n_bad:
            counts[name] = n_bad
    total = sum(counts.values())
    detail = ", ".join(f"{name!r}: {n}" for name, n in counts.items())
    return CheckResult("non_finite", not counts, True, float(total), 0.0,
                       f"{total} infinite value(s) ({detail})" if counts
                       else "every number is finite")


def _duplicates(frame: pd.DataFrame, limits: QualityThresholds) -> CheckResult:
    share = float(frame.duplicated().mean()) if len(frame) else 0.0
    return CheckResult("duplicate_rows", bool(share <= limits.max_duplicate_share), True, share,
                       limits.max_duplicate_share, f"{share:.1%} of rows repeat an earlier row")


def _labels(frame: pd.DataFrame, spec: DatasetSpec,
            limits: QualityThresholds) -> list[CheckResult]:
    labels = frame[spec.target]
    present = labels.notna()
    share = float(present.mean()) if len(frame) else 0.0
    results = [CheckResult("label_presence", bool(share > 0), False, share, None,
                           f"{share:.1%} of rows are labelled")]
    known = labels[present].astype(str)
    unknown = sorted(set(known) - set(spec.classes))
    results.append(CheckResult(
        "unknown_labels", not unknown, True, float((~known.isin(spec.classes)).sum()), 0.0,
        f"labels not in the spec's classes: {', '.join(unknown[:5])}" if unknown
        else "every label is a known class"))
    if spec.class_shares and len(known):
        observed = known.value_counts(normalize=True)
        tvd = 0.5 * sum(abs(observed.get(c, 0.0) - s) for c, s in spec.class_shares.items())
        results.append(CheckResult(
            "class_distribution", bool(tvd <= limits.max_class_shift), False, float(tvd),
            limits.max_class_shift,
            "shares " + ", ".join(f"{c} {observed.get(c, 0.0):.0%}" for c in spec.classes)))
    return results


def run_quality_checks(frame: pd.DataFrame, spec: DatasetSpec,
                       limits: QualityThresholds | None = None) -> list[CheckResult]:
    """All checks of one batch; the schema check alone runs when the columns are wrong."""
    limits = limits or QualityThresholds()
    schema = _schema(frame, spec)
    if not schema.passed:
        return [schema]
    return [schema, _row_count(frame, limits), _missing(frame, spec, limits),
            _out_of_range(frame, spec, limits), _non_finite(frame, spec),
            _duplicates(frame, limits),
            *_labels(frame, spec, limits)]


def quarantine_reason(results: list[CheckResult]) -> str | None:
    """Why a batch must be quarantined, or None when every blocking check passed."""
    failed = [f"{r.name}: {r.detail}" for r in results if r.blocking and not r.passed]
    return "; ".join(failed) or None
