"""What every ensemble of the catalogue shares: its members, its classes and its evidence.

An ensemble is a scikit-learn classifier that sits where any classifier of the catalogue sits,
in the `classify` step of the saved pipeline, after preprocessing; so it enters the same
training flow, registry, gate and serving path unchanged. Its members are catalogue entries
by name (built with the same defaults, seed and class weights as alone) or, for tests and
notebooks, `(name, estimator)` pairs.

After `fit`, every ensemble records the evidence a report or a reviewer needs to judge it
against its members, all on data the scored model did not train on: `member_scores_` (each
member's validation macro F1), `validation_score_` (the ensemble's own), `diversity_`
(pairwise disagreement and Q-statistic of the members). `ensemble_summary()` gives them as
plain values and `ensemble_of(model)` finds the ensemble inside a fitted pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from models.data.spec import TaskKind
from models.learning.algorithms import TABULAR_ALGORITHMS, find_algorithm
from models.learning.ensembles.diversity import diversity_summary, macro_f1, vote_entropy
from models.learning.text import TEXT_ALGORITHMS
from warehouse.errors import OvernightError

MemberSpec = str | tuple[str, BaseEstimator]

# Cheap, different members: linear, bagged trees, boosted trees, neighbours (tabular); the
# fast sparse-friendly models (text). The RBF SVM is left out: quadratic in rows.
DEFAULT_MEMBERS: dict[str, tuple[str, ...]] = {
    "tabular": ("logistic_regression", "random_forest", "gradient_boosting", "knn"),
    "text": ("naive_bayes", "logistic_regression", "sgd"),
}
# Members are any non-ensemble entry; ensembles cannot nest (their internal folds multiply).
MEMBERS = {a.name: a for a in (*TABULAR_ALGORITHMS, *TEXT_ALGORITHMS)}
ENSEMBLE_NAMES = ("stacking", "dynamic_selection", "voting_optimised", "blending")


class EnsembleError(OvernightError, ValueError):
    """An ensemble that cannot be built as asked (says which member and why)."""


def resolve_members(members: Sequence[MemberSpec] | None, kind: TaskKind | None, *,
                    seed: int, class_weight: Any = None) -> list[tuple[str, BaseEstimator]]:
    """Unfitted `(name, estimator)` pairs: catalogue names built, given estimators cloned.

    `kind` None resolves names for any kind (models over probabilities, such as stacking's
    meta models). Ensembles cannot be members: one nested in another would multiply its
    internal cross-validation.
    """
    chosen = members if members is not None else DEFAULT_MEMBERS[kind or "tabular"]
    out: list[tuple[str, BaseEstimator]] = []
    for item in chosen:
        if isinstance(item, str):
            if item in ENSEMBLE_NAMES:
                raise EnsembleError(f"{item!r} is an ensemble; it cannot be a member of one")
            entry = find_algorithm(MEMBERS, item, kind)
            weights = class_weight if entry.class_weight else None
            out.append((item, entry.estimator(None, seed, weights)))
        else:
            name, estimator = item
            out.append((str(name), clone(estimator)))
    names = [name for name, _ in out]
    if len(set(names)) != len(names) or not names:
        raise EnsembleError(f"ensemble members must be distinct and at least one: {names}")
    return out


class EnsembleMixin(ClassifierMixin, BaseEstimator):
    """The shared part of the ensembles: class encoding, member outputs, recorded evidence."""

    members_: list[tuple[str, BaseEstimator]]
    # True where the ensemble's validation score was measured on the rows its combination was
    # chosen on (optimised weights): then it flatters the ensemble and the report says so
    validation_is_optimistic: bool = False

    def _start(self, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """y as a 1-d array and as class indices; sets `classes_`."""
        if y is None:
            raise EnsembleError(f"{type(self).__name__} requires y to be passed, "
                                "but the target y is None")
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            found = "1 class" if len(self.classes_) == 1 else "no rows"
            raise EnsembleError(f"an ensemble needs at least two classes to learn, y has {found}")
        return y, np.searchsorted(self.classes_, y)

    @property
    def n_features_in_(self) -> int:
        """The number of columns the members were fitted on (they all see the same X)."""
        return int(self.members_[0][1].n_features_in_)

    @property
    def feature_names_in_(self) -> np.ndarray:
        """The column names the members were fitted on, when X was a frame."""
        return np.asarray(self.members_[0][1].feature_names_in_)

    def _member_proba(self, estimator: BaseEstimator, X: Any) -> np.ndarray:
        """A member's probabilities with one column per class of the ensemble (0 if unseen)."""
        proba = np.asarray(estimator.predict_proba(X), dtype=float)
        known = np.asarray(estimator.classes_)
        if len(known) == len(self.classes_) and np.array_equal(known, self.classes_):
            return proba
        out = np.zeros((proba.shape[0], len(self.classes_)))
        out[:, np.searchsorted(self.classes_, known)] = proba
        return out

    def _record(self, probas: dict[str, np.ndarray], y_idx: np.ndarray,
                ensemble_proba: np.ndarray) -> None:
        """Member and ensemble validation macro F1, and member diversity, from held-out
        probabilities (out-of-fold, or a validation part the members did not train on)."""
        k = len(self.classes_)
        self.member_scores_ = {n: macro_f1(y_idx, p.argmax(axis=1), k) for n, p in probas.items()}
        self.validation_score_ = macro_f1(y_idx, ensemble_proba.argmax(axis=1), k)
        self.diversity_ = diversity_summary({n: p.argmax(axis=1) for n, p in probas.items()},
                                            y_idx)

    def predict_proba(self, X: Any) -> np.ndarray:  # pragma: no cover - every subclass has one
        raise NotImplementedError

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "members_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def member_predictions(self, X: Any) -> dict[str, np.ndarray]:
        """Each fitted member's predicted labels (what the vote entropy is measured on)."""
        check_is_fitted(self, "members_")
        return {name: np.asarray(member.predict(X)) for name, member in self.members_}

    def uncertainty(self, X: Any) -> np.ndarray:
        """Per row, how much the members disagree (normalised vote entropy, 0 = unanimous)."""
        return vote_entropy(np.stack(list(self.member_predictions(X).values())))

    def member_roles(self) -> dict[str, Any]:
        """What each member does in the ensemble (a weight, a level, ...); for the report."""
        return {name: "member" for name, _ in self.members_}

    def ensemble_summary(self) -> dict[str, Any]:
        """The recorded evidence as plain values: members against the ensemble, diversity."""
        check_is_fitted(self, "member_scores_")
        roles = self.member_roles()
        return {
            "ensemble": type(self).__name__,
            "validation_f1_macro": self.validation_score_,
            "validation_is_optimistic": self.validation_is_optimistic,
            "members": [{"member": name, "validation_f1_macro": score,
                         "role": roles.get(name, "pruned")}
                        for name, score in self.member_scores_.items()],
            "mean_disagreement": self.diversity_["mean_disagreement"],
            "mean_q_statistic": self.diversity_["mean_q_statistic"],
            "pairs": self.diversity_["pairs"],
        }


def ensemble_of(model: Any) -> EnsembleMixin | None:
    """The ensemble inside a fitted model (pipeline, decision-rule wrapper), or None."""
    inner = model
    for _ in range(8):
        if isinstance(inner, EnsembleMixin):
            return inner
        if hasattr(inner, "steps"):
            inner = inner.steps[-1][1]
        elif hasattr(inner, "estimator_"):
            inner = inner.estimator_
        else:
            return None
    return None
