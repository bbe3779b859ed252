"""What each step of the training flow does, as plain functions (tested without Metaflow).

`load_window` reads the training data read-only, `plan_algorithms` chooses algorithms and
imbalance handling for the data's size and kind, `train_branch` tunes and fits one algorithm,
`write_reports` writes the winner's model report and the production report, and
`register_run` registers the winner with the run's rows in one warehouse transaction.

Two fits of the winner are kept (see `fits_card`): the one on the training split, whose
held-out figures are the card's metrics and which the gate judges (`JUDGED_MODEL_FILE`), and
the refit on every labelled row (`models.learning.fit.refit_full`), the artifact that is served.

Every Metaflow task is a fresh process, and so is `overnight train`, which calls `load_window`
to fail fast: this module imports the heavy libraries (scikit-learn, Optuna, the catalogue, the
registry and reports) inside the functions that use them, so each process pays only for what
its step needs. `import_for(step)` imports a step's modules up front, so the flow can time its
work without its imports.
"""

from __future__ import annotations

import importlib
import json
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from models.data.dates import DateError, parse_date
from models.registry.artifacts import HOLDOUT_FILE, JUDGED_MODEL_FILE, MODEL_FILE, REFERENCE_FILE
from warehouse.errors import OvernightError

if TYPE_CHECKING:
    from models.data.spec import DatasetSpec
    from models.evaluation.conformal import ConformalReview
    from models.learning.fit import CandidateResult, Refit, RunSummary, Split

# What each step of the flow imports (in its task's process) before its work is timed.
STEP_MODULES: dict[str, tuple[str, ...]] = {
    "start": ("warehouse", "models.data.batches", "models.data.datasets",
              "models.learning.catalogue", "models.learning.fit"),
    "train": ("threadpoolctl", "models.learning.catalogue", "models.learning.fit",
              "models.learning.tuning"),
    "join": ("warehouse", "joblib", "models.learning.fit", "models.registry.versions",
             "models.reports.model_report", "models.reports.production"),
}


def import_for(step: str) -> None:
    """Import the modules `step` of the flow needs, so its timed work excludes imports."""
    for name in STEP_MODULES.get(step, ()):
        importlib.import_module(name)

MIN_ROWS = 50
SVM_MAX_ROWS = 20_000
KNN_MAX_ROWS = 200_000
TABULAR_DEFAULT = ("logistic_regression", "random_forest", "gradient_boosting", "svm", "knn",
                   "dummy")
TEXT_DEFAULT = ("naive_bayes", "logistic_regression", "linear_svm", "sgd", "dummy")
IMBALANCED_SHARE = 0.15


class TrainingDataError(OvernightError):
    """The training window cannot train a model (says what is missing)."""


def _as_date(value: str | date | None) -> date | None:
    try:
        return parse_date(value or None)
    except DateError as error:
        raise TrainingDataError(str(error)) from None


def load_window(dataset: str, start: str | date | None = None, end: str | date | None = None
                ) -> tuple[DatasetSpec, pd.DataFrame, list[str]]:
    """The spec and the labelled rows of accepted batches in the window, checked."""
    from models.data.batches import load_training_frame
    from models.data.datasets import get_spec
    from warehouse import connect

    with connect(read_only=True) as con:
        spec = get_spec(con, dataset)
    frame, batches = load_training_frame(spec, start=_as_date(start), end=_as_date(end))
    window = f"{start or 'the first batch'} to {end or 'the last batch'}"
    if len(frame) < MIN_ROWS:
        raise TrainingDataError(
            f"dataset {dataset!r} has {len(frame)} labelled rows in accepted batches from "
            f"{window}; at least {MIN_ROWS} are needed")
    counts = frame[spec.target].value_counts()
    if len(counts) < 2:
        raise TrainingDataError(f"dataset {dataset!r} has only one class in {window}")
    return spec, frame, batches


def window_shares(frame: pd.DataFrame, spec: DatasetSpec) -> dict[str, float]:
    """Each class's share of the window's labelled rows (user specs declare no shares)."""
    labels = frame[spec.target].dropna().astype(str)
    return {str(k): float(v) for k, v in labels.value_counts(normalize=True).items()}


# scikit-learn's forests expand class_weight="balanced" into a dict keyed by class name, then
# look each name up after int() (sklearn.utils.class_weight): classes "0".."9" are never found
# and every fit raises. Such datasets get random oversampling for forests instead.
FOREST_NAMES = ("random_forest",)


# Balanced class weights (frequency only, no cost matrix) made logistic regression worse in
# macro F1 on every small imbalanced table measured for issue 18 (150-400 rows, 4-6 classes,
# 6-22 split seeds each: 0.725 vs 0.766, 0.563 vs 0.619, 0.747 vs 0.808), while they helped
# the forests, boosting and the SVM. Weighting a linear model's loss up to 8x for a class of a
# dozen rows shifts its boundaries into the common classes and costs more precision than it
# gains recall. So it runs unweighted there: the plan then offers weighted and unweighted
# models, and selection (performance first) chooses between them. Declared costs still weigh.
UNWEIGHTED_ON_FREQUENCY = ("logistic_regression",)


def numeric_names(spec: DatasetSpec) -> bool:
    """Whether some class name reads as an integer (the forests' class_weight trap)."""
    return any(str(c).strip().lstrip("+-").isdigit() for c in spec.classes)


def plan_algorithms(spec: DatasetSpec, n_rows: int, algorithms: str = "",
                    imbalance: str = "", shares: dict[str, float] | None = None
                    ) -> dict[str, Any]:
    """Algorithms for this data (by kind and size) and each one's imbalance strategy.

    Imbalance is judged on the spec's declared class shares, else on the window's `shares`
    (an ingested user file declares none, and its rare classes need handling all the same).

    The ensembles of `models.learning.ensembles.stacking` are never chosen by default (each costs
    several
    member fits); named in `algorithms` they run like any entry, with class weights on
    imbalanced data (they accept them), not resampling inside their internal folds.
    """
    from models.learning.catalogue import get_algorithm
    from models.learning.imbalance import IMBALANCE_STRATEGIES

    if algorithms.strip():
        names = [a.strip() for a in algorithms.split(",") if a.strip()]
        for name in names:
            get_algorithm(name, spec.kind)          # a clear error for an unknown name
    else:
        names = list(TEXT_DEFAULT if spec.kind == "text" else TABULAR_DEFAULT)
        too_big = {"svm": SVM_MAX_ROWS, "knn": KNN_MAX_ROWS}
        names = [n for n in names if n_rows <= too_big.get(n, n_rows)]
    if imbalance and imbalance not in IMBALANCE_STRATEGIES:
        raise TrainingDataError(f"unknown imbalance strategy {imbalance!r}; known: "
                                f"{', '.join(IMBALANCE_STRATEGIES)}")
    imbalanced = any(s < IMBALANCED_SHARE for s in (spec.class_shares or shares or {}).values())
    per_algorithm = {}
    for name in names:
        entry = get_algorithm(name, spec.kind)
        if name == "dummy":
            chosen = "none"
        elif imbalance:
            chosen = imbalance
            if chosen in ("class_weight", "cost_weight") and not entry.class_weight:
                chosen = "random_oversample"
        elif imbalanced:
            # A spec's cost matrix says what each mistake costs (missing a rare disease most):
            # weights from it, not from class frequency alone, where the model takes weights.
            weighs = entry.class_weight and not (name in FOREST_NAMES and numeric_names(spec))
            weight = "cost_weight" if spec.cost_matrix is not None else "class_weight"
            chosen = weight if weighs else "random_oversample"
            if weight == "class_weight" and name in UNWEIGHTED_ON_FREQUENCY:
                chosen = "none"
        else:
            chosen = "none"
        per_algorithm[name] = chosen
    # imbalanced data with no strategy imposed: each branch also fits the compared strategies
    # (models/learning/imbalance_comparison.py), candidates of the same leaderboard
    return {"algorithms": names, "imbalance": per_algorithm,
            "compare_imbalance": bool(imbalanced and not imbalance)}


def train_branch(spec: DatasetSpec, split: Split, algorithm: str, *,
                 imbalance: dict[str, str] | str = "none", optimize: bool = True,
                 trials: int = 20, time_budget: float | None = None, cv_folds: int = 3,
                 seed: int = 0, n_jobs: int = 1, storage: str | None = None,
                 study_name: str | None = None, text_stats: bool = False
                 ) -> tuple[CandidateResult, dict[str, Any] | None]:
    """Tune (optionally) and fit one algorithm; return its result and the tuning summary.
    `text_stats` adds the text statistics features to a text dataset's pipelines."""
    from threadpoolctl import threadpool_limits

    from models.learning.catalogue import get_algorithm
    from models.learning.fit import fit_candidate, make_model
    from models.learning.tuning import tune

    started = time.perf_counter()
    strategy = imbalance if isinstance(imbalance, str) else imbalance.get(algorithm, "none")
    fixed = {"n_jobs": n_jobs} if "n_jobs" in get_algorithm(algorithm).defaults else {}

    def build(params: dict[str, Any]) -> Any:
        return make_model(spec, algorithm, {**params, **fixed}, imbalance=strategy, seed=seed,
                          text_stats=text_stats)

    params: dict[str, Any] = {}
    summary = None
    cv_scores = None
    # native thread pools (OpenMP, BLAS) get n_jobs threads: parallel branches on a small
    # machine must not oversubscribe its cores
    with threadpool_limits(limits=max(n_jobs, 1)):
        if optimize and cv_folds >= 2:
            tuning = tune(spec, split.x_train, split.y_train, algorithm, build, trials=trials,
                          timeout=time_budget, folds=cv_folds, seed=seed, storage=storage,
                          study_name=study_name)
            params = tuning.best_params
            summary = vars(tuning)
            if storage is None and selection_folds_are_tuning_folds(split, cv_folds):
                cv_scores = tuning.best_fold_scores or None
        result = fit_candidate(spec, split, algorithm, params=params, imbalance=strategy,
                               cv_folds=cv_folds, seed=seed, model=build(params),
                               cv_scores=cv_scores)
    result.model_params = params  # type: ignore[attr-defined]
    result.work_seconds = time.perf_counter() - started  # type: ignore[attr-defined]
    return result, summary


def train_alternatives(spec: DatasetSpec, split: Split, result: CandidateResult, *,
                       cv_folds: int = 3, seed: int = 0, n_jobs: int = 1,
                       text_stats: bool = False
                       ) -> tuple[list[CandidateResult], list[dict[str, str]]]:
    """The branch's algorithm, with the parameters its tuning chose, under the other compared
    imbalance strategies (`fit_alternatives`): more candidates, and the ones that failed."""
    from threadpoolctl import threadpool_limits

    from models.learning.catalogue import get_algorithm
    from models.learning.fit import make_model
    from models.learning.imbalance_comparison import fit_alternatives

    fixed = {"n_jobs": n_jobs} if "n_jobs" in get_algorithm(result.algorithm).defaults else {}

    def make(params: dict[str, Any], strategy: str) -> Any:
        return make_model(spec, result.algorithm, {**params, **fixed}, imbalance=strategy,
                          seed=seed, text_stats=text_stats)

    with threadpool_limits(limits=max(n_jobs, 1)):
        fitted, failed = fit_alternatives(spec, split, result, cv_folds=cv_folds, seed=seed,
                                          make=make)
    for candidate in fitted:
        candidate.model_params = result.params  # type: ignore[attr-defined]
    return fitted, failed


def selection_folds_are_tuning_folds(split: Split, cv_folds: int) -> bool:
    """Whether selection scores candidates on the very folds tuning used.

    Both are `cv_folds` stratified folds of the training split shuffled with the same seed
    when the window is not small (`selection_scheme`): the best trial's fold scores are then
    the selection scores, and fitting them again would only repeat them. Small windows are
    selected on repeated folds over every row, which tuning never sees.
    """
    from models.learning.fit import selection_scheme

    scheme = selection_scheme(split, cv_folds)
    return (scheme["folds"] == cv_folds and scheme["repeats"] == 1
            and scheme["rows"] == len(split.x_train))


def last_line(failure: object) -> str:
    """The exception line of a caught failure (Metaflow keeps the whole traceback)."""
    lines = [line.strip() for line in str(failure).splitlines() if line.strip()]
    return lines[-1] if lines else repr(failure)


def run_folder(pathspec: str) -> str:
    return pathspec.replace("/", "-")


def write_reports(spec: DatasetSpec, split: Split, summary: RunSummary,
                  failures: list[dict[str, Any]], training_batches: list[str], pathspec: str,
                  seed: int, conformal: ConformalReview | None = None) -> dict[str, str]:
    """The winner's model report and the run's production report, under reports/models."""
    from models.learning.imbalance_comparison import imbalance_table
    from models.reports.model_report import build_model_report, leaderboard_table
    from models.reports.production import production_report
    from warehouse import get_settings

    winner = summary.winner
    assert winner is not None
    out_dir = get_settings().reports_dir / "models" / spec.name / run_folder(pathspec)
    model_html = build_model_report(
        spec=spec, model=winner.model, algorithm=winner.name, metrics=winner.metrics,
        X_test=split.x_test, y_test=split.y_test, out_dir=out_dir,
        leaderboard=leaderboard_table(summary.leaderboard),
        fits=fits_note(split, winner, left_out=conformal.n_left_out if conformal else 0),
        title=f"{spec.name}: {winner.name} ({pathspec})", conformal=conformal,
        vectorisers=run_vectoriser_comparison(spec, split, seed),
        comparison=imbalance_table(spec, summary.results, summary.leaderboard))
    production_html = production_report(
        spec=spec, winner={**winner.summary(), "name": winner.name},
        leaderboard=summary.leaderboard, failures=failures, significance=summary.significance,
        recommendation=summary.recommendation,
        run={"pathspec": pathspec, "training_batches": training_batches,
             "n_train": len(split.x_train), "n_test": len(split.x_test), "seed": seed},
        out_dir=out_dir)
    return {"model_report": str(model_html), "production_report": str(production_html)}


def run_vectoriser_comparison(spec: DatasetSpec, split: Split, seed: int) -> Any:
    """For a text dataset, the vectorisers compared with one classifier on this run's split
    (logistic regression at its defaults: three fits on at most `COMPARED_ROWS` training
    rows, seconds); None for tabular data."""
    if spec.kind != "text":
        return None
    from models.learning.text_comparison import compare_vectorisers_on
    from models.reports.text_insight import COMPARED_ROWS, COMPARED_VECTORISERS

    train, test = (slice(None, COMPARED_ROWS), slice(None, COMPARED_ROWS // 2))
    table = compare_vectorisers_on(split.x_train.iloc[train], split.y_train.iloc[train],
                                   split.x_test.iloc[test], split.y_test.iloc[test], spec,
                                   COMPARED_VECTORISERS, seed=seed)
    return table.drop(columns=["n_train", "n_test"]).round(
        {"accuracy": 3, "f1_macro": 3, "fit_seconds": 2, "predict_seconds": 2})


def fits_note(split: Split, winner: CandidateResult, left_out: int = 0) -> str:
    """One paragraph saying which figure comes from which fit (reports and README agree).

    `left_out`: held-out rows the served refit did not see (the conformal calibration half).
    """
    scheme = winner.cv_scheme or {}
    if scheme.get("folds"):
        selection = (f"{scheme.get('repeats', 1)} x {scheme['folds']}-fold "
                     f"{scheme.get('name', 'cross-validation')} ({scheme.get('rows')} rows)")
    else:
        selection = "held-out macro F1 (cross-validation off)"
    served = (f"on all {split.n_rows} labelled rows (refit_full): no held-out figure "
              f"describes it, since it saw every row." if not left_out else
              f"(refit_full) on all {split.n_rows} labelled rows but the {left_out} held-out "
              f"rows its conformal review sets are calibrated on ({split.n_rows - left_out} "
              f"rows): no held-out figure describes it.")
    return (f"Selection compared the candidates by {selection}; only those not significantly "
            f"below the best in macro F1, nor more than 0.01 below its mean, were ranked by "
            f"the multi-criteria score. The figures "
            f"of this report are those of the winner fitted on the {len(split.x_train)} "
            f"training rows, measured on the {len(split.x_test)} held-out rows it never saw "
            f"(the gate judges this fit). The artifact served is the winner refitted with the "
            f"same hyper-parameters {served}")


def fits_card(split: Split, winner: CandidateResult, refit: Refit, judged_sha256: str
              ) -> dict[str, Any]:
    """The card's `fits`: which fit is the artifact, which one the figures and gate use."""
    scheme = winner.cv_scheme or {}
    return {
        "artifact": {"file": MODEL_FILE, "fit": "refit_full", "rows": refit.n_rows,
                     "seconds": refit.seconds,
                     "figures": "none: refitted on every labelled row, held-out ones included"},
        "judged": {"file": JUDGED_MODEL_FILE, "sha256": judged_sha256, "fit": "training split",
                   "rows": len(split.x_train), "held_out_rows": len(split.x_test),
                   "figures": f"card metrics, on the held-out rows of {HOLDOUT_FILE}; the gate "
                              "judges this fit"},
        "selection": {**scheme, "cv_mean": (sum(winner.cv_scores) / len(winner.cv_scores)
                                            if winner.cv_scores else None),
                      "figures": "leaderboard selection_f1 / candidate_results cv_mean"},
    }


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def register_run(spec: DatasetSpec, frame: pd.DataFrame, split: Split, summary: RunSummary,
                 failures: list[dict[str, Any]], training_batches: list[str], *,
                 pathspec: str, params: dict[str, Any], reports: dict[str, str], seed: int,
                 started_at: datetime | None = None, refit: Refit | None = None,
                 conformal: ConformalReview | None = None) -> str:
    """Register the winner as challenger with the run and every candidate's row, atomically.

    With `refit`, the artifact is the refit on all rows and the training-split fit travels
    beside it as `JUDGED_MODEL_FILE` (its sha256 in the signed card); without, the artifact
    is the training-split fit, as before.
    """
    import joblib

    from models.registry.versions import file_sha256, register_model, set_alias_in
    from models.reports.production import save_holdout, save_reference
    from warehouse import connect

    winner = summary.winner
    assert winner is not None
    ranks = {row["name"]: row for row in summary.leaderboard}

    def write_rows(con: Any, version: Any) -> None:
        con.execute(
            "INSERT INTO training_runs VALUES (?, ?, ?, 'ok', ?, ?, ?, ?, ?, ?, NULL)",
            [pathspec, spec.name, pathspec, started_at or utc_now(), utc_now(),
             json.dumps(params, default=str), training_batches, seed, version.model_version])
        rows = []
        results = {r.name: r for r in summary.results}
        for name, row in ranks.items():
            result = results[name]
            rows.append([
                pathspec, spec.name, name, "ok", row["rank"], row["score"],
                result.metrics["accuracy"], result.metrics["balanced_accuracy"],
                result.metrics["f1_macro"],
                float(pd.Series(result.cv_scores).mean()) if result.cv_scores else None,
                float(pd.Series(result.cv_scores).std()) if len(result.cv_scores) > 1 else None,
                result.fit_seconds, result.predict_seconds,
                row.get("p_vs_best"),
                json.dumps(result.metrics), json.dumps(getattr(result, "model_params", {}),
                                                       default=str), None])
        rows.extend([pathspec, spec.name, f["algorithm"], "failed", None, None, None, None,
                     None, None, None, None, None, None, None, None, f["error"]]
                    for f in failures)
        con.executemany("INSERT INTO candidate_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                        " ?, ?, ?, ?, ?, ?)", rows)
        set_alias_in(con, spec.name, "challenger", version.model_version,
                     reason=f"trained by {pathspec}")

    with connect(read_only=True) as con:
        row = con.execute("SELECT max(batch_date) FROM batches WHERE list_contains(?, batch_id)",
                          [training_batches]).fetchone()
    data_until = row[0].isoformat() if row and row[0] else None
    with tempfile.TemporaryDirectory() as scratch:
        reference = save_reference(frame, spec, Path(scratch) / REFERENCE_FILE, seed=seed)
        holdout = save_holdout(split.x_test, split.y_test, spec, Path(scratch) / HOLDOUT_FILE)
        attachments = {REFERENCE_FILE: reference, HOLDOUT_FILE: holdout}
        extra = {"pathspec": pathspec, "imbalance": winner.imbalance, "reports": reports,
                 "data_until": data_until, "n_train": len(split.x_train),
                 "n_test": len(split.x_test), "n_window_rows": split.n_rows,
                 "n_fit_rows": len(split.x_train), "refit_full": refit is not None}
        if conformal is not None:       # plain JSON in the signed card (conformal.CARD_KEY)
            extra["conformal"] = conformal.card_entry()
        if refit is not None:
            judged = Path(scratch) / JUDGED_MODEL_FILE
            joblib.dump(winner.model, judged, compress=3)
            attachments[JUDGED_MODEL_FILE] = judged
            extra.update(n_fit_rows=refit.n_rows,
                         fits=fits_card(split, winner, refit, file_sha256(judged)))
        version = register_model(
            refit.model if refit is not None else winner.model, spec, algorithm=winner.name,
            metrics=winner.metrics, training_batches=training_batches, run_id=pathspec,
            params=getattr(winner, "model_params", {}), extra=extra,
            attachments=attachments, within=write_rows)
    return version.model_version
