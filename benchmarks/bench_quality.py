"""The platform's champion against plain scikit-learn models on the same split (issue 18).

For scikit-learn's bundled sets (iris, wine, breast_cancer, digits), three small generated
imbalanced tables and the three built-in datasets (customer, medical, and news, a text set),
several stratified 80/20 splits (one per seed). Each split's 80 % is written to a CSV and goes
through the real command line, as a user's file would, in a fresh data home:

    overnight ingest --dataset NAME --file train.csv --target label [--text-columns ...]
    overnight train --dataset NAME --promote --trials T
    overnight predict --dataset NAME --file test.csv --out scored.csv

and the macro F1 of scored.csv's `predicted_class` against the 20 %'s labels is the platform's
figure (a row that `predict` rejects counts as wrong). Plain logistic regression, random forest
and histogram gradient boosting (scikit-learn defaults, the platform's preprocessing, text
columns included) are fitted on the same 80 % in the same run. Goal per set: the platform's
mean macro F1 over the seeds at or above the best plain model's mean minus 0.005. Each run's
figures and wall times (ingest, train, predict) are printed and written to
benchmarks/results/quality.json.

    .venv/bin/python benchmarks/bench_quality.py [--sets iris wine] [--seeds 0 1 2] [--trials 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets as sk_datasets
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from models.data.ingest import infer_spec
from models.data.spec import DatasetSpec
from models.learning.preprocessing import build_preprocessor

RESULTS = Path(__file__).parent / "results" / "quality.json"
CLI = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "overnight"
GOAL_MARGIN = 0.005
TARGET = "label"
PLAIN: dict[str, Callable[[int], object]] = {
    "logistic_regression": lambda seed: LogisticRegression(max_iter=1000),
    "random_forest": lambda seed: RandomForestClassifier(random_state=seed),
    "hist_gradient_boosting": lambda seed: HistGradientBoostingClassifier(random_state=seed),
}


@dataclass(frozen=True)
class BenchSet:
    """A table to benchmark and the columns a user would declare as free text."""
    load: Callable[[], pd.DataFrame]
    text_columns: tuple[str, ...] = ()


def bundled(loader: Callable[..., object]) -> BenchSet:
    def load() -> pd.DataFrame:
        data = loader(as_frame=True)
        frame = data.frame.rename(columns=lambda c: str(c).replace(" ", "_"))  # type: ignore
        names = list(data.target_names)  # type: ignore[attr-defined]
        frame[TARGET] = [str(names[i]) for i in data.target]  # type: ignore[attr-defined]
        return frame.drop(columns=["target"])
    return BenchSet(load)


def generated(rows: int, classes: int, seed: int) -> BenchSet:
    """A small imbalanced table: skewed class weights, label noise, a few useless columns."""
    def load() -> pd.DataFrame:
        weights = np.geomspace(1.0, 0.12, classes)
        x, y = sk_datasets.make_classification(
            n_samples=rows, n_features=10, n_informative=5, n_redundant=2, n_classes=classes,
            n_clusters_per_class=1, weights=list(weights / weights.sum()), flip_y=0.03,
            class_sep=1.0, random_state=seed)
        frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
        frame[TARGET] = [f"c{v}" for v in y]
        return frame
    return BenchSet(load)


def builtin(name: str) -> BenchSet:
    """A built-in dataset's generated table, handed to the CLI as a user's file would be."""
    from models.data.datasets import BUILTIN

    entry = BUILTIN[name]
    text = tuple(entry.spec.features_of_type("text"))

    def load() -> pd.DataFrame:
        from models.data.generators.base import STABLE

        frame = entry.generate(date(2026, 1, 1), entry.default_rows, 42, STABLE)
        return frame[[*entry.spec.feature_names, entry.spec.target]].rename(
            columns={entry.spec.target: TARGET})
    return BenchSet(load, text)


SETS: dict[str, BenchSet] = {
    "iris": bundled(sk_datasets.load_iris), "wine": bundled(sk_datasets.load_wine),
    "breast_cancer": bundled(sk_datasets.load_breast_cancer),
    "digits": bundled(sk_datasets.load_digits),
    "gen_150x4": generated(150, 4, 1), "gen_250x5": generated(250, 5, 2),
    "gen_400x6": generated(400, 6, 3),
    "customer": builtin("customer"), "medical": builtin("medical"), "news": builtin("news"),
}


def macro_f1(y_true: pd.Series, y_pred: object) -> float:
    return float(f1_score(y_true.astype(str), pd.Series(y_pred).astype(str), average="macro",
                          zero_division=0))


class CliFailure(Exception):
    """A CLI step that exited non-zero (the gate's refusal included): the run has no figure."""


def cli_env(home: Path, signing_key: str) -> dict[str, str]:
    """The environment a user would have: a data home of its own and a signing key outside it
    (as tests/conftest.py `signing_env` does; config under the run's folder, not ~/.config)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OVERNIGHT_")}
    env.update(OVERNIGHT_HOME=str(home), OVERNIGHT_SIGNING_KEY=signing_key,
               XDG_CONFIG_HOME=str(home.parent / "config"))
    return env


def run_cli(step: str, args: list[str], env: dict[str, str], cwd: Path,
            log: dict[str, object]) -> float:
    """One `overnight` command; its wall time, with its output kept in `log`."""
    started = time.perf_counter()
    done = subprocess.run([str(CLI), *args], env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    log[step] = {"seconds": round(seconds, 1), "exit": done.returncode,
                 "stdout": done.stdout.strip().splitlines()[-12:],
                 "stderr": done.stderr.strip().splitlines()[-12:]}
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "(no output)").splitlines()[-1]
        raise CliFailure(f"`overnight {step}` exited {done.returncode}: {last}")
    return seconds


def scored_predictions(scored: Path, n_rows: int) -> tuple[list[str | None], int]:
    """The champion's class per test row, in file order; rows `predict` rejected are None."""
    frame = pd.read_csv(scored, dtype={"predicted_class": str}, keep_default_na=False)
    rejects_file = scored.with_name(f"{scored.stem}.rejects{scored.suffix}")  # batch.py's name
    rejected: set[int] = set()
    if rejects_file.exists():
        rejected = set(pd.read_csv(rejects_file)["row_number"].astype(int))
    kept = [i for i in range(n_rows) if i not in rejected]
    if len(kept) != len(frame):
        raise CliFailure(f"scored.csv has {len(frame)} rows, expected {len(kept)}")
    predictions: list[str | None] = [None] * n_rows
    for position, label in zip(kept, frame["predicted_class"], strict=True):
        predictions[position] = label
    return predictions, len(rejected)


def champion_card(home: Path, dataset: str) -> dict[str, object]:
    """What the promoted model's card says about itself (algorithm, rows it was fitted on)."""
    cards = sorted((home / "artifacts" / dataset).glob("v*/card.json"))
    if not cards:
        return {}
    card = json.loads(cards[-1].read_text())
    keep = ("model_version", "algorithm", "params", "metrics")
    out = {k: card.get(k) for k in keep}
    out.update({k: v for k, v in card.items() if "row" in k or "fit" in k or "refit" in k})
    return out


def challenger_f1(home: Path, dataset: str, test: pd.DataFrame) -> float | None:
    """For information when the gate refused: the registered (unpromoted) artifact's macro F1,
    scored in this process, since `predict` serves champions only."""
    import joblib

    from models.serving.scoring import score_frame

    folders = sorted((home / "artifacts" / dataset).glob("v*/card.json"))
    if not folders:
        return None
    card = json.loads(folders[-1].read_text())
    spec = DatasetSpec.model_validate(card["input_schema"])
    model = joblib.load(folders[-1].parent / card["artifact"])  # our own fresh file
    scored = score_frame(model, test.drop(columns=[TARGET]).reset_index(drop=True), spec)
    return macro_f1(test[TARGET].reset_index(drop=True), scored.class_names())


def platform_run(name: str, bench: BenchSet, train: pd.DataFrame, test: pd.DataFrame,
                 options: argparse.Namespace, signing_key: str) -> dict[str, object]:
    """ingest -> train --promote -> predict in a fresh data home; macro F1 on the test part."""
    dataset = f"bench_{name}"
    folder = Path(tempfile.mkdtemp(prefix=f"bench-quality-{name}-"))
    home = folder / "home"
    env = cli_env(home, signing_key)
    train.to_csv(folder / "train.csv", index=False)
    test.drop(columns=[TARGET]).to_csv(folder / "test.csv", index=False)
    log: dict[str, object] = {}
    out: dict[str, object] = {"cli": log}
    failed = False
    try:
        ingest = ["ingest", "--dataset", dataset, "--file", "train.csv", "--target", TARGET]
        if bench.text_columns:
            ingest += ["--text-columns", ",".join(bench.text_columns)]
        out["ingest_seconds"] = round(run_cli("ingest", ingest, env, folder, log), 1)
        train_args = ["train", "--dataset", dataset, "--promote", "--trials",
                      str(options.trials)]
        if options.time_budget is not None:
            train_args += ["--time-budget", str(options.time_budget)]
        out["train_seconds"] = round(run_cli("train", train_args, env, folder, log), 1)
        out["champion"] = champion_card(home, dataset)
        predict = ["predict", "--dataset", dataset, "--file", "test.csv", "--out", "scored.csv"]
        out["predict_seconds"] = round(run_cli("predict", predict, env, folder, log), 1)
        predictions, rejected = scored_predictions(folder / "scored.csv", len(test))
        truth = test[TARGET].astype(str).reset_index(drop=True)
        out["f1_macro"] = macro_f1(truth, ["" if p is None else p for p in predictions])
        out["rejected_rows"] = rejected
    except CliFailure as error:
        failed = True
        out["f1_macro"] = None
        out["error"] = str(error)
        out.setdefault("champion", champion_card(home, dataset))
        for step, record in log.items():
            out.setdefault(f"{step}_seconds", record["seconds"])  # type: ignore[index]
        out["challenger_f1_macro"] = challenger_f1(home, dataset, test)
    finally:
        if options.keep or failed:
            out["folder"] = str(folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return out


def plain_runs(spec: DatasetSpec, train: pd.DataFrame, test: pd.DataFrame, seed: int
               ) -> dict[str, dict[str, float]]:
    """The plain models, scikit-learn defaults behind the platform's preprocessing.

    Histogram gradient boosting needs dense input: on a text set (sparse TF-IDF of tens of
    thousands of columns) it is left out rather than densified."""
    plain = {}
    for algo, make in PLAIN.items():
        if algo == "hist_gradient_boosting" and spec.kind == "text":
            continue
        started = time.perf_counter()
        with threadpool_limits(limits=1):
            pipe = Pipeline([("features", build_preprocessor(spec)), ("model", make(seed))])
            pipe.fit(train[spec.feature_names], train[TARGET].astype(str))
            predicted = pipe.predict(test[spec.feature_names])
        plain[algo] = {"f1_macro": macro_f1(test[TARGET], predicted),
                       "seconds": round(time.perf_counter() - started, 2)}
    return plain


def run_seed(name: str, bench: BenchSet, frame: pd.DataFrame, spec: DatasetSpec, seed: int,
             options: argparse.Namespace, signing_key: str) -> dict[str, object]:
    train, test = train_test_split(frame, test_size=0.2, stratify=frame[TARGET],
                                   random_state=seed)
    row: dict[str, object] = {"seed": seed, "train_rows": len(train), "test_rows": len(test)}
    row["platform"] = platform_run(name, bench, train, test, options, signing_key)
    row["plain"] = plain_runs(spec, train, test, seed)
    return row


def mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def summarise(name: str, frame: pd.DataFrame, spec: DatasetSpec,
              runs: list[dict[str, object]]) -> dict[str, object]:
    """Per set: the means over seeds, the best plain model by its mean, the goal."""
    scores = [r["platform"]["f1_macro"] for r in runs]  # type: ignore[index]
    plain_means = {algo: mean([r["plain"][algo]["f1_macro"] for r in runs])  # type: ignore
                   for algo in PLAIN if all(algo in r["plain"] for r in runs)}  # type: ignore
    best_plain = max(plain_means, key=lambda a: plain_means[a] or 0.0)
    best_per_seed = mean([max(v["f1_macro"] for v in r["plain"].values())  # type: ignore
                          for r in runs])
    complete = all(s is not None for s in scores)
    platform_mean = mean([s for s in scores if s is not None])
    best_mean = plain_means[best_plain]
    counts = frame[TARGET].value_counts(normalize=True)
    return {
        "set": name, "rows": len(frame), "classes": len(spec.classes),
        "text_columns": list(spec.features_of_type("text")),
        "smallest_class_share": round(float(counts.min()), 3),
        "platform_f1_macro_mean": platform_mean, "platform_complete": complete,
        "plain_f1_macro_mean": plain_means, "best_plain": best_plain,
        "best_plain_f1_macro_mean": best_mean, "best_plain_per_seed_mean": best_per_seed,
        "gap": None if platform_mean is None else platform_mean - best_mean,  # type: ignore
        "with_unpromoted_f1_macro_mean": mean([  # for information: refused challengers too
            r["platform"]["f1_macro"] if r["platform"]["f1_macro"] is not None  # type: ignore
            else r["platform"].get("challenger_f1_macro") for r in runs  # type: ignore
            if r["platform"]["f1_macro"] is not None  # type: ignore
            or r["platform"].get("challenger_f1_macro") is not None]),  # type: ignore
        "meets_goal": bool(complete and platform_mean is not None
                           and platform_mean >= best_mean - GOAL_MARGIN),  # type: ignore
        "winners": [r["platform"].get("champion", {}).get("algorithm")  # type: ignore
                    for r in runs],
        "train_seconds_mean": mean([r["platform"]["train_seconds"] for r in runs  # type: ignore
                                    if "train_seconds" in r["platform"]]),  # type: ignore
        "runs": runs,
    }


def run_set(name: str, options: argparse.Namespace, signing_key: str) -> dict[str, object]:
    bench = SETS[name]
    frame = bench.load()
    spec = infer_spec(frame, name, TARGET, text_columns=bench.text_columns)
    runs = []
    for seed in options.seeds:
        run = run_seed(name, bench, frame, spec, seed, options, signing_key)
        runs.append(run)
        p = run["platform"]
        figure = "FAILED" if p["f1_macro"] is None else f"{p['f1_macro']:.3f}"  # type: ignore
        plain = " ".join(f"{a[:3]} {v['f1_macro']:.3f}"
                         for a, v in run["plain"].items())  # type: ignore[attr-defined]
        if p.get("challenger_f1_macro") is not None:  # type: ignore[attr-defined]
            figure += f" (unpromoted challenger {p['challenger_f1_macro']:.3f})"  # type: ignore
        print(f"  {name} seed {seed}: platform {figure} "
              f"({p.get('champion', {}).get('algorithm')}; ingest "  # type: ignore
              f"{p.get('ingest_seconds')} s, train {p.get('train_seconds')} s, predict "  # type: ignore
              f"{p.get('predict_seconds')} s)  plain {plain}"  # type: ignore
              + (f"  error: {p['error']}" if "error" in p else ""), flush=True)  # type: ignore
    return summarise(name, frame, spec, runs)


def set_line(row: dict[str, object]) -> str:
    figure = row["platform_f1_macro_mean"]
    shown = "n/a" if figure is None else f"{figure:.3f}"
    runs: list[dict[str, dict[str, object]]] = row["runs"]  # type: ignore[assignment]
    failed = sum(r["platform"]["f1_macro"] is None for r in runs)
    if failed:
        informative = row["with_unpromoted_f1_macro_mean"]
        shown += (f" over {len(runs) - failed}/{len(runs)} seeds ({failed} without a champion; "
                  f"counting unpromoted challengers "
                  f"{'n/a' if informative is None else f'{informative:.3f}'})")
    return (f"{row['set']:14s} platform {shown}  best plain {row['best_plain_f1_macro_mean']:.3f}"
            f" ({row['best_plain']}; best per seed {row['best_plain_per_seed_mean']:.3f})  "
            f"winners {','.join(str(w) for w in row['winners'])}  train "  # type: ignore
            f"{row['train_seconds_mean'] or 0:.0f} s/run  "
            f"{'ok' if row['meets_goal'] else 'INCOMPLETE' if failed else 'BELOW GOAL'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="`overnight train --trials`.")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="`overnight train --time-budget` (default: the CLI's own).")
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2],
                        help="One stratified 80/20 split per seed.")
    parser.add_argument("--keep", action="store_true",
                        help="Keep every run's folder (a failed run's is always kept).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    options = parser.parse_args()
    if not CLI.exists():
        sys.exit(f"{CLI} not found: run `make install` first")
    signing_key = secrets.token_hex(32)
    started = datetime.now(UTC)
    rows = []
    for name in options.sets:
        row = run_set(name, options, signing_key)
        rows.append(row)
        print(set_line(row), flush=True)
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps({
            "host": platform.node(), "python": platform.python_version(),
            "date": started.isoformat(timespec="seconds"), "path": "overnight CLI",
            "options": {"trials": options.trials, "time_budget": options.time_budget,
                        "seeds": options.seeds, "sets": options.sets},
            "goal_margin": GOAL_MARGIN, "sets": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()
