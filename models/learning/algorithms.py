"""The algorithms the platform trains: one `Algorithm` entry per model family, with its
defaults and Optuna search space, and the tabular entries themselves.

Entries are plain data, so every kind of entry (tabular here, text in `models.learning.text`,
ensembles in `models.learning.ensembles`) builds on this module and the catalogue
(`models.learning.catalogue`) assembles them all without import cycles.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from sklearn.base import BaseEstimator

from models.data.spec import TaskKind
from warehouse.errors import OvernightError

if TYPE_CHECKING:
    from sklearn.calibration import CalibratedClassifierCV

SearchSpace = Callable[[optuna.Trial], dict[str, Any]]


class UnknownAlgorithmError(OvernightError):
    pass


@dataclass(frozen=True)
class Algorithm:
    """One catalogue entry."""

    name: str
    kinds: frozenset[TaskKind]
    make: Callable[..., BaseEstimator]
    defaults: Mapping[str, Any]
    search_space: SearchSpace
    class_weight: bool = False          # accepts class_weight (for the weighting strategies)
    seeded: bool = False                # accepts random_state
    interpretability: float = 0.5       # 0..1, used by the multi-criteria ranking
    description: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    takes_kind: bool = False            # accepts kind (ensembles pick their members by it)
    opt_in: bool = False                # listed by algorithms_for only when asked (ensembles)

    def estimator(self, params: Mapping[str, Any] | None = None, seed: int = 0,
                  class_weight: Any = None, kind: TaskKind | None = None) -> BaseEstimator:
        """An unfitted estimator: defaults, then tuned params, then seed and class weights."""
        merged = {**self.defaults, **self.fixed, **(params or {})}
        if self.seeded:
            merged["random_state"] = seed
        if self.takes_kind and kind is not None:
            merged["kind"] = kind
        if class_weight is not None:
            if not self.class_weight:
                raise UnknownAlgorithmError(
                    f"{self.name} takes no class weights; use a resampler instead"
                )
            merged["class_weight"] = class_weight
        return self.make(**merged)


@dataclass(frozen=True)
class Estimator:
    """A scikit-learn estimator class named by module and name, imported when the first
    estimator is made: a training task fits one algorithm, and importing every family's
    module (calibration, ensembles, SVMs, neighbours) cost each fresh task process about
    0.1 s for the ones it never uses. Plain data, so an entry still pickles."""

    module: str
    name: str

    def __call__(self, **params: Any) -> BaseEstimator:
        estimator_class = getattr(importlib.import_module(self.module), self.name)
        return estimator_class(**params)


def calibrated_svm(C: float = 1.0, gamma: str | float = "scale", class_weight: Any = None,
                   random_state: int | None = None) -> CalibratedClassifierCV:
    """An RBF SVM with probabilities from sigmoid calibration on internal folds."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    svm = SVC(C=C, gamma=gamma, class_weight=class_weight, random_state=random_state)
    return CalibratedClassifierCV(svm, method="sigmoid", cv=3, ensemble=False)


def _lr_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}


def _rf_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 300, step=50),
        "max_depth": trial.suggest_int("max_depth", 4, 24),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 10),
        "max_features": trial.suggest_categorical("max_features", ["sqrt", "log2", None]),
    }


def _hgb_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 64, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 60),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 1.0, log=True),
    }


def _svm_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "C": trial.suggest_float("C", 1e-2, 1e2, log=True),
        "gamma": trial.suggest_categorical("gamma", ["scale", "auto"]),
    }


def _knn_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "n_neighbors": trial.suggest_int("n_neighbors", 3, 51, step=2),
        "weights": trial.suggest_categorical("weights", ["uniform", "distance"]),
    }


def _no_space(trial: optuna.Trial) -> dict[str, Any]:
    return {}


TABULAR: frozenset[TaskKind] = frozenset({"tabular"})
BOTH: frozenset[TaskKind] = frozenset({"tabular", "text"})

TABULAR_ALGORITHMS: tuple[Algorithm, ...] = (
    Algorithm("dummy", BOTH, Estimator("sklearn.dummy", "DummyClassifier"),
              {"strategy": "prior"}, _no_space, interpretability=1.0,
              description="predicts the class priors (baseline)"),
    Algorithm("logistic_regression", BOTH,
              Estimator("sklearn.linear_model", "LogisticRegression"),
              {"C": 1.0, "max_iter": 2000}, _lr_space, class_weight=True, seeded=True,
              interpretability=0.9),
    Algorithm("random_forest", BOTH, Estimator("sklearn.ensemble", "RandomForestClassifier"),
              {"n_estimators": 150, "min_samples_leaf": 2, "n_jobs": 1}, _rf_space,
              class_weight=True, seeded=True, interpretability=0.5),
    Algorithm("gradient_boosting", TABULAR,
              Estimator("sklearn.ensemble", "HistGradientBoostingClassifier"),
              {"learning_rate": 0.1, "max_iter": 100, "early_stopping": False}, _hgb_space,
              class_weight=True, seeded=True, interpretability=0.4),
    Algorithm("svm", TABULAR, calibrated_svm, {"C": 1.0, "gamma": "scale"}, _svm_space,
              class_weight=True, seeded=True, interpretability=0.3,
              description="RBF support vector machine with sigmoid-calibrated probabilities"),
    Algorithm("knn", TABULAR, Estimator("sklearn.neighbors", "KNeighborsClassifier"),
              {"n_neighbors": 15, "weights": "distance"}, _knn_space, interpretability=0.4),
)


def find_algorithm(entries: Mapping[str, Algorithm], name: str, kind: TaskKind | None = None
                   ) -> Algorithm:
    """The entry called `name` among `entries`, serving `kind` when given; else a clear error
    listing what is known."""
    algorithm = entries.get(name)
    if algorithm is None or (kind is not None and kind not in algorithm.kinds):
        known = [n for n, a in entries.items() if kind is None or kind in a.kinds]
        raise UnknownAlgorithmError(
            f"unknown algorithm {name!r}{f' for {kind} data' if kind else ''}; "
            f"known: {', '.join(known)}"
        )
    return algorithm
