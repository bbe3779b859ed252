"""Hyper-parameter tuning with Optuna: cross-validated, pruned, inside a time budget.

The objective of a trial is the mean macro F1 over stratified folds of the training split;
after each fold the running mean is reported so the median pruner can stop a bad trial early.
The search spaces tune classifiers, never preprocessing, so each fold's preprocessing is fitted
once per study and reused by every trial (`PreprocessedFolds`): the scores are the ones the
whole pipeline gives, without refitting a text vectoriser 60 times for a classifier that fits
in milliseconds. Each complete trial keeps its per-fold scores (`fold_scores`), so a caller
whose selection folds are these same folds need not fit them again.
The catalogue's default parameters are always the first trial, so a tuned model is never
worse than the defaults on the same folds. With `storage` (an RDB URL such as
`sqlite:///optuna.db` or `postgresql://...`) trials of one study can run on many workers.
Each finished trial prints one line (`on_trial`), which Metaflow forwards as a task line: the
command line counts them for its progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import optuna
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from models.data.spec import DatasetSpec
from models.learning.catalogue import get_algorithm

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass
class TuningResult:
    algorithm: str
    best_params: dict[str, Any]
    best_score: float
    default_score: float
    n_trials: int
    n_pruned: int
    seconds: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    # the best trial's macro F1 per fold, in fold order (empty when no trial completed)
    best_fold_scores: list[float] = field(default_factory=list)


def print_line(line: str) -> None:
    """Default `on_trial`: flushed at once, so a Metaflow task's line shows up as it happens."""
    print(line, flush=True)


def trial_line(algorithm: str, total: int, on_trial: Callable[[str], None]) -> Callable[..., None]:
    """An Optuna callback: `ALGORITHM: trial K/TOTAL done (best macro F1 0.812)` per finished
    trial (complete, pruned or failed), K counting the trials of this `optimize` call."""
    finished = 0

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal finished
        finished += 1
        scores = [t.value for t in study.trials
                  if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
        best = f"best macro F1 {max(scores):.3f}" if scores else "no score yet"
        on_trial(f"{algorithm}: trial {finished}/{total} done ({best})")
    return callback


def fold_score(model: Any, x: Any, y: Any, train: np.ndarray, test: np.ndarray) -> float:
    fitted = clone(model).fit(x.iloc[train], y.iloc[train])
    return float(f1_score(y.iloc[test], fitted.predict(x.iloc[test]), average="macro",
                          zero_division=0))


PREPROCESS_STEP = "preprocess"


def split_preprocess(model: Any) -> tuple[Any, Any] | None:
    """(preprocessor, the rest) of a catalogue pipeline, or None when `model` is not one.

    The rest is a pipeline of the same class (imblearn's keeps resampling on training rows
    only) or the lone classifier. Wrapped models (decision rules that refit the pipeline on
    internal folds) are not split: they are scored whole.
    """
    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        return None
    name, head = model.steps[0]
    if name != PREPROCESS_STEP or head is None or head == "passthrough":
        return None
    rest = model.steps[1:]
    return head, (rest[0][1] if len(rest) == 1 else type(model)(rest))


class PreprocessedFolds:
    """The study's folds with each fold's preprocessing fitted once and reused by all trials.

    A pipeline's `fit` is `fit_transform` of its preprocessor, then `fit` of the rest on the
    result; its `predict` is `transform`, then `predict`. Doing the preprocessor's part once per
    fold and the rest per trial gives the same scores as `fold_score` on the whole pipeline
    (a test checks it). Preprocessors are keyed by a hash of their unfitted parameters, so a
    search space that did tune preprocessing would simply miss the cache; at most
    `max_preprocessors` distinct ones are kept (the rest are scored whole).
    """

    def __init__(self, x: Any, y: Any, splits: list[tuple[np.ndarray, np.ndarray]], *,
                 max_preprocessors: int = 2) -> None:
        self.x, self.y, self.splits = x, y, splits
        self.max_preprocessors = max_preprocessors
        self._fitted: dict[str, list[tuple[Any, Any] | None]] = {}

    def score(self, model: Any, index: int) -> float:
        """Macro F1 of a fresh clone of `model` on fold `index` (trained on its other rows)."""
        train, test = self.splits[index]
        parts = split_preprocess(model)
        if parts is None:
            return fold_score(model, self.x, self.y, train, test)
        head, rest = parts
        transformed = self._transformed(head, index)
        if transformed is None:
            return fold_score(model, self.x, self.y, train, test)
        x_train, x_test = transformed
        fitted = clone(rest).fit(x_train, self.y.iloc[train])
        return float(f1_score(self.y.iloc[test], fitted.predict(x_test), average="macro",
                              zero_division=0))

    def _transformed(self, head: Any, index: int) -> tuple[Any, Any] | None:
        """Fold `index`'s (training, test) rows through `head` fitted on its training rows."""
        key = joblib.hash(head)
        if key not in self._fitted:
            if len(self._fitted) >= self.max_preprocessors:
                return None
            self._fitted[key] = [None] * len(self.splits)
        folds = self._fitted[key]
        if folds[index] is None:
            train, test = self.splits[index]
            fitted = clone(head)
            x_train = fitted.fit_transform(self.x.iloc[train], self.y.iloc[train])
            folds[index] = (x_train, fitted.transform(self.x.iloc[test]))
        return folds[index]


def tune(spec: DatasetSpec, x: Any, y: Any, algorithm: str, make_model: Any, *,
         trials: int = 20, timeout: float | None = None, folds: int = 3, seed: int = 0,
         storage: str | None = None, study_name: str | None = None,
         on_trial: Callable[[str], None] | None = print_line) -> TuningResult:
    """Search the algorithm's space; `make_model(params)` builds an unfitted pipeline.
    `on_trial` gets a line per finished trial (None: silent)."""
    entry = get_algorithm(algorithm, spec.kind)
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
    prepared = PreprocessedFolds(x, y, splits)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
        storage=storage, study_name=study_name, load_if_exists=storage is not None,
    )
    defaults = {k: v for k, v in entry.defaults.items()
                if k in _space_names(entry.search_space, seed)}
    if not study.trials:
        study.enqueue_trial(defaults, skip_if_exists=True)

    def objective(trial: optuna.Trial) -> float:
        params = entry.search_space(trial)
        model = make_model(params)
        scores: list[float] = []
        for step in range(len(splits)):
            scores.append(prepared.score(model, step))
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        trial.set_user_attr("fold_scores", scores)
        return float(np.mean(scores))

    start = time.perf_counter()
    has_space = bool(_space_names(entry.search_space, seed))
    n_trials = trials if has_space else 1
    callbacks = [trial_line(algorithm, n_trials, on_trial)] if on_trial is not None else []
    study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(ValueError,),
                   callbacks=callbacks)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    default_trial = complete[0] if complete else None
    return TuningResult(
        algorithm=algorithm,
        best_params=dict(study.best_params) if complete else {},
        best_score=float(study.best_value) if complete else float("nan"),
        default_score=float(default_trial.value) if default_trial and default_trial.value
        is not None else float("nan"),
        n_trials=len(study.trials),
        n_pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        seconds=time.perf_counter() - start,
        trials=[{"number": t.number, "state": t.state.name, "value": t.value,
                 "params": t.params} for t in study.trials],
        best_fold_scores=list(study.best_trial.user_attrs.get("fold_scores", []))
        if complete else [],
    )


def _space_names(space: Any, seed: int) -> set[str]:
    """Names of the parameters a search space suggests (sampled once on a throwaway study)."""
    probe = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = probe.ask()
    space(trial)
    return set(trial.params)
