"""The text algorithms of the catalogue: naive Bayes, a calibrated linear SVM and SGD.

They are plain entries; `models.learning.catalogue` assembles them with the tabular ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import optuna

from models.data.spec import TaskKind
from models.learning.algorithms import Algorithm, Estimator

if TYPE_CHECKING:
    from sklearn.calibration import CalibratedClassifierCV

# --------------------------------------------------------------------------- algorithms

TEXT: frozenset[TaskKind] = frozenset({"text"})


def calibrated_linear_svm(C: float = 1.0, class_weight: Any = None,
                          random_state: int | None = None) -> CalibratedClassifierCV:
    """A linear SVM with probabilities from sigmoid calibration on internal folds."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    svm = LinearSVC(C=C, class_weight=class_weight, random_state=random_state)
    return CalibratedClassifierCV(svm, method="sigmoid", cv=3, ensemble=False)


def _nb_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"alpha": trial.suggest_float("alpha", 1e-3, 3.0, log=True)}


def _linear_svm_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"C": trial.suggest_float("C", 1e-2, 1e2, log=True)}


def _sgd_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "loss": trial.suggest_categorical("loss", ["log_loss", "modified_huber"]),
        "alpha": trial.suggest_float("alpha", 1e-6, 1e-2, log=True),
    }


TEXT_ALGORITHMS: tuple[Algorithm, ...] = (
    Algorithm("naive_bayes", TEXT, Estimator("sklearn.naive_bayes", "MultinomialNB"),
              {"alpha": 0.1}, _nb_space,
              interpretability=0.9,
              description="multinomial naive Bayes over word weights"),
    Algorithm("linear_svm", TEXT, calibrated_linear_svm, {"C": 0.5}, _linear_svm_space,
              class_weight=True, seeded=True, interpretability=0.8,
              description="linear SVM with sigmoid-calibrated probabilities"),
    Algorithm("sgd", TEXT, Estimator("sklearn.linear_model", "SGDClassifier"),
              {"loss": "log_loss", "alpha": 1e-4, "max_iter": 500, "tol": 1e-4},
              _sgd_space, class_weight=True, seeded=True, interpretability=0.8,
              description="linear model trained by stochastic gradient descent"),
)
