"""Hyper-parameter tuning with Optuna: cross-validated, pruned, inside a time budget.

The objective of a trial is the mean macro F1 over stratified folds of the training split;
after each fold the running mean is reported so the median pruner can stop a bad trial early.
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

import numpy as np
import optuna
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold

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


def tune(spec: DatasetSpec, x: Any, y: Any, algorithm: str, make_model: Any, *,
         trials: int = 20, timeout: float | None = None, folds: int = 3, seed: int = 0,
         storage: str | None = None, study_name: str | None = None,
         on_trial: Callable[[str], None] | None = print_line) -> TuningResult:
    """Search the algorithm's space; `make_model(params)` builds an unfitted pipeline.
    `on_trial` gets a line per finished trial (None: silent)."""
    entry = get_algorithm(algorithm, spec.kind)
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
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
        scores = []
        for step, (train, test) in enumerate(splits):
            scores.append(fold_score(model, x, y, train, test))
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
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
    )


def _space_names(space: Any, seed: int) -> set[str]:
    """Names of the parameters a search space suggests (sampled once on a throwaway study)."""
    probe = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = probe.ask()
    space(trial)
    return set(trial.params)
