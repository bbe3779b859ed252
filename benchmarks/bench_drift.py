"""Drift verdict time and peak memory: overnight's all-rows path against Evidently's preset.

For each batch size (10k, 100k, 1M rows x 20 numeric columns by default) and each scenario
(`stable`: nothing moves; `shifted`: 12 of 20 columns move, some by less than the threshold)
two cases run, each in its own process so that its peak resident memory (ru_maxrss) is its
own:

- overnight: `compute_drift` on every row against a `ReferenceProfile` of the 5000-row
  reference (the profile is built at training time; its build time is reported apart), then
  the nightly HTML (`render_html`: Evidently on 5000-row samples) timed apart;
- evidently: `Report([DataDriftPreset()])` on the full reference and the full batch
  (`monitoring.drift.evidently_report.evidently_verdict`, which reads the verdicts from
  `snapshot.dict()`).

Importing Evidently (3-10 s, once per process) is outside both timings, and each path
first runs once, untimed, on 500 rows (Evidently's first report in a process pays several
seconds of one-off set-up); both figures are kept in the JSON.

The columns mix Evidently's method choices: continuous columns (Wasserstein, normed),
integer counts, and 0/1 and 3-valued columns (<= 5 distinct values: Jensen-Shannon), one
with 2 % missing values. The table shows both times, the speed-up, both peak memories and the
agreement of the verdicts (per column drifted yes/no, and the dataset verdict). Figures are
printed and written to benchmarks/results/drift.json.

    .venv/bin/python benchmarks/bench_drift.py [--sizes 10000 100000 1000000]

The served-traffic path (issue 21), with `--served`: the same 20 columns as typed served
inputs (Parquet files as `monitoring.drift.served_store` writes them, c0..c19 plus the
predicted class, 1M rows per file), 1M and 10M rows by default. Two cases, each in its own
process: `served` (`monitoring.drift.served.served_drift`: DuckDB aggregates, scipy on the
small results) and `in_memory` (every row loaded into pandas, then today's `compute_drift`;
only up to `--in-memory-max` rows). Time and peak memory of the verdict (ru_maxrss, and its
rise over the process before the verdict), verdicts compared column by column. Written to
benchmarks/results/drift_served.json. Goal: 10M rows in < 15 s and < 1 GB.

    .venv/bin/python benchmarks/bench_drift.py --served [--sizes 1000000 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.data.spec import DatasetSpec, FeatureSpec

RESULTS = Path(__file__).parent / "results" / "drift.json"
SERVED_RESULTS = Path(__file__).parent / "results" / "drift_served.json"
SERVED_PATHS = ("served", "in_memory")
FILE_ROWS = 1_000_000
REFERENCE_ROWS = 5_000
N_COLUMNS = 20
WARM_UP_ROWS = 500     # each path runs once on this many rows first, untimed (first-call costs)
PATHS = ("overnight", "evidently")
SCENARIOS = ("stable", "shifted")


def bench_spec(n_columns: int = N_COLUMNS) -> DatasetSpec:
    return DatasetSpec(
        name="bench", kind="tabular", target="label", classes=("a", "b"),
        features=tuple(FeatureSpec(name=f"x{i:02d}", type="numeric") for i in range(n_columns)))


def make_frame(rows: int, shifted: bool, seed: int, n_columns: int = N_COLUMNS) -> pd.DataFrame:
    """Twenty numeric columns of different shapes; `shifted` moves twelve of them.

    Location shifts of x00-x05 are 0.05 ... 0.5 standard deviations, so the first ones stay
    below Evidently's 0.1 threshold while the later ones cross it.
    """
    rng = np.random.default_rng(seed)
    s = 1.0 if shifted else 0.0
    columns: dict[str, np.ndarray] = {}
    for i, shift in enumerate((0.05, 0.08, 0.12, 0.2, 0.3, 0.5)):
        columns[f"x{i:02d}"] = rng.normal(i + s * shift * (1 + i / 10), 1 + i / 10, rows)
    for i in range(6, 10):
        sigma = 0.6 * (1.3 if shifted and i < 8 else 1.0)
        columns[f"x{i:02d}"] = rng.lognormal(3.0, sigma, rows)
    for i in range(10, 13):
        columns[f"x{i:02d}"] = rng.exponential(10.0 * (1.25 if shifted and i == 10 else 1.0), rows)
    for i in range(13, 16):
        columns[f"x{i:02d}"] = rng.poisson(3.0 + (1.0 if shifted and i == 13 else 0.0),
                                           rows).astype(float)
    for i in range(16, 18):
        columns[f"x{i:02d}"] = (rng.random(rows) < (0.45 if shifted and i == 16 else 0.3)
                                ).astype(float)
    columns["x18"] = rng.choice(3, rows, p=[0.3, 0.3, 0.4] if shifted else [0.5, 0.3, 0.2]
                                ).astype(float)
    x19 = rng.uniform(0, 1 + 0.3 * s, rows)
    x19[rng.random(rows) < 0.02] = np.nan
    columns["x19"] = x19
    return pd.DataFrame({f"x{i:02d}": columns[f"x{i:02d}"] for i in range(n_columns)})


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _import_evidently() -> float:
    """Import Evidently outside the timed part (a one-off 3-10 s per process, not per report)."""
    start = time.perf_counter()
    import evidently.presets  # noqa: F401

    return time.perf_counter() - start


def run_case(rows: int, scenario: str, path: str) -> dict[str, Any]:
    """One (size, scenario, path) in this process: the verdict, its time and peak memory."""
    from monitoring.drift.evidently_report import evidently_verdict, render_html
    from monitoring.drift.nightly import compute_drift
    from monitoring.drift.profile import build_profile

    spec = bench_spec()
    reference = make_frame(REFERENCE_ROWS, False, seed=1)
    current = make_frame(rows, scenario == "shifted", seed=2)
    data_mb = _peak_mb()
    out: dict[str, Any] = {"rows": rows, "scenario": scenario, "path": path,
                           "columns": N_COLUMNS, "reference_rows": REFERENCE_ROWS,
                           "data_rss_mb": data_mb}
    if path == "overnight":
        start = time.perf_counter()
        profile = build_profile(reference, spec)
        out["profile_s"] = time.perf_counter() - start
        start = time.perf_counter()
        compute_drift(current.iloc[:WARM_UP_ROWS], profile, spec)
        out["warmup_s"] = time.perf_counter() - start
        start = time.perf_counter()
        summary = compute_drift(current, profile, spec)
        out["verdict_s"] = time.perf_counter() - start
        out["verdict_peak_rss_mb"] = _peak_mb()
        out["evidently_import_s"] = _import_evidently()
        with tempfile.TemporaryDirectory() as scratch:
            render_html(reference, current.iloc[:WARM_UP_ROWS], spec, summary,
                        Path(scratch) / "warm-up.html")
            start = time.perf_counter()
            render_html(reference, current, spec, summary, Path(scratch) / "drift.html")
            out["html_s"] = time.perf_counter() - start
    else:
        out["evidently_import_s"] = _import_evidently()
        start = time.perf_counter()
        evidently_verdict(reference, current.iloc[:WARM_UP_ROWS], spec)
        out["warmup_s"] = time.perf_counter() - start
        start = time.perf_counter()
        summary = evidently_verdict(reference, current, spec)
        out["verdict_s"] = time.perf_counter() - start
        out["verdict_peak_rss_mb"] = _peak_mb()
    out["peak_rss_mb"] = _peak_mb()
    out["dataset_drift"] = summary.dataset_drift
    out["share_drifted"] = summary.share_drifted
    out["verdicts"] = {c.column: {"method": c.method, "score": c.score, "drifted": c.drifted}
                       for c in summary.columns}
    return out


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Agreement of two cases' verdicts: per column drifted yes/no, dataset, scores."""
    columns = sorted(ours["verdicts"])
    same = [c for c in columns if theirs["verdicts"].get(c, {}).get("drifted")
            == ours["verdicts"][c]["drifted"]]
    score_gap = max(abs(ours["verdicts"][c]["score"] - theirs["verdicts"][c]["score"])
                    / max(abs(theirs["verdicts"][c]["score"]), 1e-12) for c in columns)
    return {
        "rows": ours["rows"], "scenario": ours["scenario"],
        "overnight_s": ours["verdict_s"], "evidently_s": theirs["verdict_s"],
        "speedup": theirs["verdict_s"] / ours["verdict_s"],
        "overnight_html_s": ours["html_s"], "profile_s": ours["profile_s"],
        "overnight_peak_mb": ours["verdict_peak_rss_mb"],
        "overnight_peak_with_html_mb": ours["peak_rss_mb"],
        "evidently_peak_mb": theirs["peak_rss_mb"], "data_rss_mb": ours["data_rss_mb"],
        "columns_agree": len(same), "columns": len(columns),
        "dataset_drift_overnight": ours["dataset_drift"],
        "dataset_drift_evidently": theirs["dataset_drift"],
        "verdicts_agree": len(same) == len(columns)
        and ours["dataset_drift"] == theirs["dataset_drift"],
        "max_relative_score_gap": score_gap,
        "drifted": [c for c in columns if ours["verdicts"][c]["drifted"]],
        "methods": sorted({v["method"] for v in ours["verdicts"].values()}),
    }


# ------------------------------------------------------------------ served traffic (issue 21)


def write_typed(rows: int, shifted: bool, folder: Path) -> list[str]:
    """Typed served files of `rows` rows, as served_store writes them (1M rows per file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from monitoring.drift.served_store import column_map

    mapping = column_map(bench_spec())
    files = []
    for i, start in enumerate(range(0, rows, FILE_ROWS)):
        n = min(FILE_ROWS, rows - start)
        frame = make_frame(n, shifted, seed=100 + i)
        rng = np.random.default_rng(200 + i)
        columns = {"predicted_class": pa.array(rng.choice(["a", "b"], n, p=[0.6, 0.4]))}
        columns.update({m["column"]: pa.array(frame[m["feature"]].to_numpy())
                        for m in mapping})
        path = folder / f"typed-{i:03d}.parquet"
        pq.write_table(pa.table(columns), path)
        files.append(str(path))
    return files


def run_served_case(folder: str, path: str) -> dict[str, Any]:
    """One served case in this process: the verdict over the typed files, time and memory."""
    from dataclasses import replace

    from monitoring.drift.profile import build_profile
    from monitoring.drift.served import in_memory_drift, served_drift

    spec = bench_spec()
    files = sorted(str(p) for p in Path(folder).glob("typed-*.parquet"))
    profile = replace(build_profile(make_frame(REFERENCE_ROWS, False, seed=1), spec),
                      prediction={"a": 3000, "b": 2000})
    before = _peak_mb()
    start = time.perf_counter()
    summary = (served_drift(files, profile, spec) if path == "served"
               else in_memory_drift(files, profile, spec))
    seconds = time.perf_counter() - start
    return {"path": path, "verdict_s": seconds, "peak_rss_mb": _peak_mb(),
            "rss_before_mb": before, "rise_mb": _peak_mb() - before,
            "rows": summary.n_current, "dataset_drift": summary.dataset_drift,
            "verdicts": {c.column: {"method": c.method, "score": c.score,
                                    "drifted": c.drifted} for c in summary.columns}}


def served_main(sizes: list[int], scenarios: list[str], in_memory_max: int) -> None:
    rows_out, cases = [], []
    print(f"{'rows':>11} {'scenario':<9}{'served s':>10}{'served MB':>11}{'in-mem s':>10}"
          f"{'in-mem MB':>11}{'cols agree':>12}{'dataset':>9}")
    for rows in sizes:
        for scenario in scenarios:
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                write_typed(rows, scenario == "shifted", Path(folder))
                prepare = time.perf_counter() - start
                pair: dict[str, dict[str, Any]] = {}
                for path in SERVED_PATHS:
                    if path == "in_memory" and rows > in_memory_max:
                        continue
                    out = subprocess.run([sys.executable, __file__, "--served-case", folder,
                                          path], capture_output=True, text=True, check=True)
                    pair[path] = json.loads(out.stdout.strip().splitlines()[-1])
                    cases.append({"rows": rows, "scenario": scenario, **pair[path]})
            ours, theirs = pair["served"], pair.get("in_memory")
            same = None if theirs is None else sum(
                ours["verdicts"][c]["drifted"] == theirs["verdicts"][c]["drifted"]
                and ours["verdicts"][c]["method"] == theirs["verdicts"][c]["method"]
                for c in ours["verdicts"])
            row = {"rows": rows, "scenario": scenario, "prepare_s": prepare,
                   "served_s": ours["verdict_s"], "served_peak_mb": ours["peak_rss_mb"],
                   "served_rise_mb": ours["rise_mb"],
                   "in_memory_s": theirs and theirs["verdict_s"],
                   "in_memory_peak_mb": theirs and theirs["peak_rss_mb"],
                   "columns_agree": same, "columns": len(ours["verdicts"]),
                   "dataset_drift": ours["dataset_drift"],
                   "verdicts_agree": None if theirs is None else (
                       same == len(ours["verdicts"])
                       and ours["dataset_drift"] == theirs["dataset_drift"]),
                   "goal_met": ours["verdict_s"] < 15 and ours["peak_rss_mb"] < 1024,
                   "drifted": sorted(c for c, v in ours["verdicts"].items() if v["drifted"])}
            rows_out.append(row)
            agree = "-" if same is None else f"{same}/{row['columns']}"
            print(f"{rows:>11,} {scenario:<9}{row['served_s']:>10.2f}"
                  f"{row['served_peak_mb']:>11,.0f}"
                  f"{(theirs or {}).get('verdict_s', float('nan')):>10.2f}"
                  f"{(theirs or {}).get('peak_rss_mb', float('nan')):>11,.0f}"
                  f"{agree:>12}{ours['dataset_drift']!s:>9}", flush=True)
    SERVED_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    SERVED_RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "note": "served_s: served_drift over typed Parquet (DuckDB aggregates); in_memory_s: "
                "the same files loaded into pandas, then compute_drift; peaks are ru_maxrss of "
                "each case's own process (rise_mb: over the process before the verdict). "
                "The machine was shared when this ran: times are indicative only.",
        "comparisons": rows_out, "cases": cases}, indent=2))
    print(f"written {SERVED_RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--served", action="store_true",
                        help="the served-traffic path (typed Parquet, out of core)")
    parser.add_argument("--in-memory-max", type=int, default=2_000_000,
                        help="largest size the in-memory yardstick runs at (served mode)")
    parser.add_argument("--case", nargs=3, metavar=("ROWS", "SCENARIO", "PATH"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--served-case", nargs=2, metavar=("FOLDER", "PATH"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(int(args.case[0]), args.case[1], args.case[2])))
        return
    if args.served_case:
        print(json.dumps(run_served_case(*args.served_case)))
        return
    if args.served:
        served_main(args.sizes or [1_000_000, 10_000_000], args.scenarios, args.in_memory_max)
        return
    args.sizes = args.sizes or [10_000, 100_000, 1_000_000]
    cases, rows_out = [], []
    print(f"{'rows':>10} {'scenario':<9}{'overnight s':>12}{'evidently s':>12}{'speed-up':>10}"
          f"{'html s':>8}{'ours MB':>9}{'Evid. MB':>10}{'cols agree':>12}{'dataset':>14}")
    for rows in args.sizes:
        for scenario in args.scenarios:
            pair = {}
            for path in PATHS:
                out = subprocess.run([sys.executable, __file__, "--case", str(rows), scenario,
                                      path], capture_output=True, text=True, check=True)
                pair[path] = json.loads(out.stdout.strip().splitlines()[-1])
                cases.append(pair[path])
            row = compare(pair["overnight"], pair["evidently"])
            rows_out.append(row)
            dataset = (f"{row['dataset_drift_overnight']}/{row['dataset_drift_evidently']}")
            print(f"{rows:>10,} {scenario:<9}{row['overnight_s']:>12.3f}"
                  f"{row['evidently_s']:>12.2f}{row['speedup']:>9.0f}x{row['overnight_html_s']:>8.2f}"
                  f"{row['overnight_peak_mb']:>9,.0f}{row['evidently_peak_mb']:>10,.0f}"
                  f"{row['columns_agree']:>7}/{row['columns']:<4}{dataset:>14}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "note": "overnight_s: compute_drift on all rows (profile prebuilt, profile_s apart); "
                "evidently_s: DataDriftPreset on the full frames; peaks are ru_maxrss of the "
                "case's own process (overnight_peak_mb before the sampled HTML, "
                "overnight_peak_with_html_mb after it); data_rss_mb: after making the data.",
        "comparisons": rows_out, "cases": cases}, indent=2))
    print(f"all verdicts agree: {all(r['verdicts_agree'] for r in rows_out)}; "
          f"written {RESULTS}")


if __name__ == "__main__":
    main()
