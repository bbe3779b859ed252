"""The out-of-core served verdict (DuckDB aggregates) equals today's in-memory verdict on the
same rows: a property test over several distributions and sizes, each branch of the
aggregate tests forced once (asymptotic KS, exact Wasserstein), and text columns."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.data.datasets import builtin
from models.data.generators.base import STABLE
from models.data.spec import DatasetSpec, FeatureSpec
from monitoring.drift import served_stats
from monitoring.drift.profile import build_profile
from monitoring.drift.served import in_memory_drift, served_drift
from monitoring.drift.served_store import column_map

SPEC = DatasetSpec(
    name="toy", kind="tabular", target="label", classes=("a", "b"),
    features=(FeatureSpec(name="x", type="numeric"), FeatureSpec(name="y value", type="numeric"),
              FeatureSpec(name="kind", type="categorical")))


def typed_file(frame: pd.DataFrame, spec: DatasetSpec, folder: Path) -> str:
    """The frame as served_store writes it: c0..cN in spec order, plus predicted_class."""
    columns = {"predicted_class": frame["prediction"].astype(str).to_numpy()}
    for m in column_map(spec):
        values = frame[m["feature"]]
        columns[m["column"]] = (values.to_numpy(dtype=float) if m["type"] == "numeric"
                                else values.astype(object).where(values.notna(), None))
    path = folder / "typed.parquet"
    pq.write_table(pa.table(columns), path)
    return str(path)


def draw(kind: str, n: int, shift: float, rng: np.random.Generator) -> np.ndarray:
    if kind == "normal":
        return rng.normal(shift, 1.0, n)
    if kind == "integers":                  # atoms at the reference values
        return rng.integers(0, 30, n).astype(float) + round(shift * 5)
    if kind == "lognormal":
        return rng.lognormal(shift, 0.8, n)
    if kind == "few":                       # <= 5 distinct values: tested as categories
        return rng.choice([0.0, 1.0, 2.0], n, p=[0.5, 0.3, 0.2] if shift < 0.3 else
                          [0.2, 0.3, 0.5])
    values = rng.normal(shift, 1.0, n)      # with missing and infinite values
    values[rng.random(n) < 0.05] = np.nan
    values[rng.random(n) < 0.01] = np.inf
    return values


def frames(kind: str, n_ref: int, n_cur: int, shift: float, seed: int
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def one(n: int, s: float) -> pd.DataFrame:
        return pd.DataFrame({
            "x": draw(kind, n, s, rng), "y value": rng.normal(0, 2, n),
            "kind": rng.choice(["p", "q", "r"], n, p=[0.5, 0.3, 0.2] if s < 0.5
                               else [0.3, 0.3, 0.4]),
            "prediction": rng.choice(["a", "b"], n)})
    return one(n_ref, 0.0), one(n_cur, shift)


def assert_same(ours, theirs) -> None:
    assert [(c.column, c.method, c.drifted) for c in ours.columns] == [
        (c.column, c.method, c.drifted) for c in theirs.columns]
    for mine, reference in zip(ours.columns, theirs.columns, strict=True):
        if mine.method == "wasserstein":        # an estimate inside certified bounds
            assert mine.score == pytest.approx(reference.score, abs=0.01)
        else:
            assert mine.score == pytest.approx(reference.score, rel=1e-9, abs=1e-12)
    assert ours.dataset_drift == theirs.dataset_drift


def compare(kind: str, n_ref: int, n_cur: int, shift: float, seed: int) -> None:
    reference, current = frames(kind, n_ref, n_cur, shift, seed)
    profile = replace(build_profile(reference, SPEC),
                      prediction=reference["prediction"].value_counts().to_dict())
    with tempfile.TemporaryDirectory() as folder:
        files = [typed_file(current, SPEC, Path(folder))]
        assert_same(served_drift(files, profile, SPEC), in_memory_drift(files, profile, SPEC))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["normal", "integers", "lognormal", "few", "dirty"]),
       n_ref=st.sampled_from([300, 1000, 1001, 4000]),
       n_cur=st.integers(min_value=50, max_value=20_000),
       shift=st.sampled_from([0.0, 0.05, 0.12, 0.3, 1.0]),
       seed=st.integers(min_value=0, max_value=10_000))
def test_out_of_core_equals_in_memory(kind, n_ref, n_cur, shift, seed) -> None:
    compare(kind, n_ref, n_cur, shift, seed)


def test_the_asymptotic_ks_branch_equals_scipy(monkeypatch) -> None:
    """Above REBUILD_LIMIT the p-value comes from scipy's asymptotic formula on the exact D."""
    monkeypatch.setattr(served_stats, "REBUILD_LIMIT", 0)
    for shift in (0.0, 0.04, 0.5):
        compare("normal", 800, 30_000, shift, seed=3)
        compare("integers", 800, 30_000, shift, seed=4)


def test_the_exact_wasserstein_branch_equals_the_in_memory_score(monkeypatch) -> None:
    """Bounds that cannot decide (forced here) fall back to the exact distance in SQL."""
    monkeypatch.setattr(served_stats, "TOLERANCE", 10.0)
    for kind in ("normal", "integers", "dirty"):
        reference, current = frames(kind, 3000, 20_000, 0.1, seed=5)
        profile = build_profile(reference, SPEC)
        with tempfile.TemporaryDirectory() as folder:
            files = [typed_file(current, SPEC, Path(folder))]
            ours, theirs = served_drift(files, profile, SPEC), in_memory_drift(files, profile,
                                                                             SPEC)
        assert [(c.column, c.drifted) for c in ours.columns] == [
            (c.column, c.drifted) for c in theirs.columns]
        for mine, reference_column in zip(ours.columns, theirs.columns, strict=True):
            assert mine.score == pytest.approx(reference_column.score, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("rows", [300, 3000])
def test_text_columns_stream_to_the_same_verdict(rows: int) -> None:
    news = builtin("news")
    reference = news.generate(date(2026, 11, 1), rows, 1, STABLE)
    current = news.generate(date(2026, 11, 2), 2500, 2, STABLE).assign(prediction="x")
    profile = build_profile(reference, news.spec)
    with tempfile.TemporaryDirectory() as folder:
        files = [typed_file(current, news.spec, Path(folder))]
        ours = served_drift(files, profile, news.spec)
        theirs = in_memory_drift(files, profile, news.spec)
    assert any(c.column.endswith(":oov_share") for c in ours.columns)
    assert_same(ours, theirs)


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["normal", "integers", "lognormal", "dirty"]),
       n_cur=st.integers(min_value=20, max_value=5_000),
       shift=st.sampled_from([0.0, 0.05, 0.1, 0.5]),
       seed=st.integers(min_value=0, max_value=10_000))
def test_wasserstein_cell_bounds_hold_the_exact_distance(kind, n_cur, shift, seed) -> None:
    """The certified bounds always contain the in-memory distance."""
    from monitoring.drift.statistics import wasserstein_distance_sorted

    rng = np.random.default_rng(seed)
    reference = np.sort(draw(kind, 1500, 0.0, rng))
    reference = reference[np.isfinite(reference)]
    current = draw(kind, n_cur, shift, rng)
    current = current[np.isfinite(current)]
    lo, width, cells = served_stats.cell_grid(reference)
    cell = np.clip(np.floor((current - lo) / width), -1, cells).astype(np.int64)
    lower, estimate, upper = served_stats.wasserstein_cell_bounds(
        reference, cell, np.ones(len(current)), current)
    exact = wasserstein_distance_sorted(reference, current)
    assert lower - 1e-9 <= exact <= upper + 1e-9
    assert lower <= estimate <= upper


def test_typing_reads_users_names_as_values_and_keeps_only_served_roles(tmp_path) -> None:
    """Feature names that are user text (quotes, slashes, tildes, SQL) reach only bound JSON
    pointers; typed columns are c0..cN; shadow rows are left out."""
    import json
    from datetime import datetime

    import duckdb

    from monitoring.drift.served_store import _write_typed

    names = ['say "hi"', "a/b", "c~d", "x'); DROP TABLE predictions; --", "größe"]
    spec = DatasetSpec(name="nasty", kind="tabular", target="label", classes=("a", "b"),
                       features=tuple(FeatureSpec(name=n, type="numeric" if i % 2 == 0
                                                  else "categorical")
                                      for i, n in enumerate(names)))
    rows = [(f"p{i}", role, json.dumps({n: (i + j if j % 2 == 0 else f"v{i}")
                                        for j, n in enumerate(names)}))
            for i, role in enumerate(["served", "batch", "shadow", "served"])]
    landed = tmp_path / "pred-x.parquet"
    pq.write_table(pa.table({
        "prediction_id": [r[0] for r in rows], "dataset": ["nasty"] * 4,
        "model_version": ["nasty-v1"] * 4, "alias": ["champion"] * 4,
        "role": [r[1] for r in rows], "predicted_at": [datetime(2026, 11, 20)] * 4,
        "predicted_class": ["a"] * 4, "inputs": [r[2] for r in rows]}), landed)
    out = tmp_path / "typed.parquet"
    with duckdb.connect() as con:
        assert _write_typed(con, spec, [landed], out) == 3
    typed = pq.read_table(out).to_pandas()
    assert list(typed.columns[-5:]) == ["c0", "c1", "c2", "c3", "c4"]
    assert typed["prediction_id"].tolist() == ["p0", "p1", "p3"]
    assert typed["c0"].tolist() == [0.0, 1.0, 3.0] and typed["c2"].tolist() == [2.0, 3.0, 5.0]
    assert typed["c1"].tolist() == ["v0", "v1", "v3"] and typed["c4"].tolist() == [4.0, 5.0, 7.0]
