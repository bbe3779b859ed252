"""Optuna search of an ensemble's members and soft-voting weights, in a study that can resume.

The objective of a trial is the macro F1 of the weighted soft vote of the members'
out-of-fold probabilities (which members take part, and each one's weight). The members are
fitted once, before the search, so a trial is a few numpy operations and a hundred trials
take about a second. The first trial of a new study is plain soft voting of every member, so
the chosen weights never score worse on the validation folds than no search at all.

The study is persisted when `storage` is given (a path to a sqlite file, a journal file
ending in `.log` / `.jsonl` / `.journal`, or any Optuna RDB URL) and resumes from there: a
second call adds its trials to the first's and keeps the best. Its name defaults to a
fingerprint of the members, labels and probabilities, so resuming only ever continues the
search for the same problem; an explicit name reused on another problem is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from models.learning.ensembles.diversity import macro_f1, soft_vote
from warehouse.errors import OvernightError

optuna.logging.set_verbosity(optuna.logging.WARNING)

JOURNAL_SUFFIXES = (".log", ".jsonl", ".journal")
MIN_WEIGHT = 0.05


class EnsembleSearchError(OvernightError):
    """A study that cannot be resumed for this problem (says which and why)."""


@dataclass
class SearchResult:
    weights: dict[str, float]          # 0.0 for a member left out
    score: float                       # best validation macro F1
    n_trials: int                      # trials in the study, over every run of it
    study_name: str


def storage_for(storage: str | Path | None) -> Any:
    """An Optuna storage for a path or URL (None: in memory, nothing persisted)."""
    if storage is None or storage == "":
        return None
    text = str(storage)
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in JOURNAL_SUFFIXES:
        return JournalStorage(JournalFileBackend(str(path)))
    return f"sqlite:///{path}"


def fingerprint(probas: Mapping[str, np.ndarray], y: np.ndarray) -> str:
    """A hash of the members' names, the labels and the probabilities: the search problem."""
    digest = hashlib.sha256()
    for name, proba in probas.items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(np.round(proba, 10)).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()


def _study(probas: Mapping[str, np.ndarray], y: np.ndarray, seed: int, storage: Any,
           study_name: str | None) -> optuna.Study:
    key = fingerprint(probas, y)
    name = study_name or f"ensemble-weights-{key[:16]}"
    study = optuna.create_study(direction="maximize", study_name=name, storage=storage,
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                load_if_exists=storage is not None)
    known = study.user_attrs.get("fingerprint")
    if known is None:
        study.set_user_attr("fingerprint", key)
        study.set_user_attr("members", list(probas))
    elif known != key:
        raise EnsembleSearchError(
            f"study {name!r} searched another problem (other members, labels or folds); "
            "give this one another study name, or none to have one made from the data")
    if not study.trials:
        study.enqueue_trial({**{f"use_{n}": True for n in probas},
                             **{f"weight_{n}": 1.0 for n in probas}})
    return study


def trial_weights(trial: optuna.Trial | optuna.trial.FrozenTrial, names: list[str]
                  ) -> dict[str, float]:
    """The weights a trial chose (conditional: a member left out has no weight parameter)."""
    if isinstance(trial, optuna.Trial):
        return {n: trial.suggest_float(f"weight_{n}", MIN_WEIGHT, 1.0)
                if trial.suggest_categorical(f"use_{n}", [True, False]) else 0.0 for n in names}
    return {n: float(trial.params[f"weight_{n}"]) if trial.params[f"use_{n}"] else 0.0
            for n in names}


def search_weights(probas: Mapping[str, np.ndarray], y: np.ndarray, *, n_trials: int = 60,
                   seed: int = 0, storage: str | Path | None = None,
                   study_name: str | None = None) -> SearchResult:
    """Run `n_trials` more trials of the study; return the best weights found so far.

    `probas` are out-of-fold probabilities per member (columns = classes), `y` class indices.
    """
    names = list(probas)
    y = np.asarray(y)
    k = next(iter(probas.values())).shape[1]
    study = _study(probas, y, seed, storage_for(storage), study_name)

    def objective(trial: optuna.Trial) -> float:
        weights = trial_weights(trial, names)
        if not any(weights.values()):
            return 0.0
        return macro_f1(y, soft_vote(probas, weights).argmax(axis=1), k)

    study.optimize(objective, n_trials=n_trials)
    best = study.best_trial
    return SearchResult(weights=trial_weights(best, names), score=float(best.value or 0.0),
                        n_trials=len(study.trials), study_name=study.study_name)
