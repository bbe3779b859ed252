"""Ensembles as catalogue candidates: multi-level stacking, dynamic selection, optimised voting,
blending.

- `StackingEnsemble`: level-1 members give out-of-fold probabilities (`cross_val_predict` on
  stratified folds, so no level-1 output a later level learns from was predicted by a model
  that saw that row); level-2 meta models learn from those, again out of fold; a final model
  learns from the level-1 and level-2 outputs together. At prediction time every level is
  refitted on all rows, as in scikit-learn's `StackingClassifier`.
- `DynamicSelectionEnsemble` (`models.learning.ensembles.selection`): KNORA-E / KNORA-U per row.
- `OptimisedVotingEnsemble`: soft voting whose members and weights Optuna chooses on
  out-of-fold probabilities to maximise macro F1 (`models.learning.ensembles.search`), then backward
  pruning of members that add nothing (`models.learning.ensembles.diversity`).
- `BlendingEnsemble` (`models.learning.ensembles.blending`): members fitted on part of the rows,
  a meta-model on their probabilities for the held-out rest.

They register in the catalogue as `stacking`, `dynamic_selection`, `voting_optimised` and
`blending`, opt-in: named in a run's algorithm list they train through the same flow as any
entry, but default runs do not include them (each costs several member fits). Internal folds
and held-out slices resample nothing: with a resampling imbalance strategy (SMOTE,
oversampling) copies of a row can fall on both sides of an internal split, so prefer
`class_weight` (the training plan's choice for ensembles), which the members that accept class
weights receive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.utils.validation import check_is_fitted

from models.data.spec import TaskKind
from models.learning.algorithms import BOTH, Algorithm
from models.learning.ensembles.base import EnsembleMixin, MemberSpec, resolve_members
from models.learning.ensembles.blending import BlendingEnsemble
from models.learning.ensembles.diversity import prune_members, soft_vote
from models.learning.ensembles.search import search_weights
from models.learning.ensembles.selection import DynamicSelectionEnsemble


def out_of_fold(members: list[tuple[str, Any]], X: Any, y: np.ndarray,
                folds: StratifiedKFold) -> dict[str, np.ndarray]:
    """Each member's out-of-fold probabilities (columns: the sorted classes of y)."""
    return {name: cross_val_predict(estimator, X, y, cv=folds, method="predict_proba")
            for name, estimator in members}


class _FoldedEnsemble(EnsembleMixin):
    """An ensemble that learns from out-of-fold member outputs on `cv` stratified folds."""

    cv: int
    random_state: int

    def _folds(self) -> StratifiedKFold:
        return StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)


class StackingEnsemble(_FoldedEnsemble):
    """Three-level stacking: members -> meta models -> final model (see the module docstring).

    `members` and `meta` are catalogue names or `(name, estimator)` pairs; `final` one of
    them. Meta and final models see probabilities, never the raw features.
    """

    def __init__(self, members: Sequence[MemberSpec] | None = None,
                 meta: Sequence[MemberSpec] = ("logistic_regression", "random_forest"),
                 final: MemberSpec = "logistic_regression", cv: int = 3,
                 kind: TaskKind = "tabular", class_weight: Any = None,
                 random_state: int = 0) -> None:
        self.members = members
        self.meta = meta
        self.final = final
        self.cv = cv
        self.kind = kind
        self.class_weight = class_weight
        self.random_state = random_state

    def _resolve(self, specs: Sequence[MemberSpec] | None, kind: TaskKind | None
                 ) -> list[tuple[str, Any]]:
        return resolve_members(specs, kind, seed=self.random_state,
                               class_weight=self.class_weight)

    def fit(self, X: Any, y: Any) -> StackingEnsemble:
        y, y_idx = self._start(y)
        folds = self._folds()
        level1 = self._resolve(self.members, self.kind)
        level2 = self._resolve(self.meta, None)
        (final_name, final), = self._resolve([self.final], None)
        oof1 = out_of_fold(level1, X, y, folds)
        z1 = np.hstack(list(oof1.values()))
        z = np.hstack([z1, *out_of_fold(level2, z1, y, folds).values()])
        oof_final = out_of_fold([(final_name, final)], z, y, folds)[final_name]
        self.members_ = [(name, estimator.fit(X, y)) for name, estimator in level1]
        self.meta_ = [(name, estimator.fit(z1, y)) for name, estimator in level2]
        self.final_ = final.fit(z, y)
        self._record(oof1, y_idx, oof_final)
        return self

    def level_outputs(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """The level-1 features (member probabilities) and level-2 features (meta ones)."""
        check_is_fitted(self, "final_")
        z1 = np.hstack([self._member_proba(m, X) for _, m in self.members_])
        z2 = np.hstack([self._member_proba(m, z1) for _, m in self.meta_])
        return z1, z2

    def predict_proba(self, X: Any) -> np.ndarray:
        z1, z2 = self.level_outputs(X)
        return self._member_proba(self.final_, np.hstack([z1, z2]))

    def member_roles(self) -> dict[str, Any]:
        return {name: "level 1" for name, _ in self.members_}


class OptimisedVotingEnsemble(_FoldedEnsemble):
    """Soft voting with Optuna-chosen members and weights, pruned (see the module docstring).

    `storage` (a sqlite or journal file path, or an Optuna URL) persists the search so a
    later fit on the same data resumes it with `n_trials` more trials; `study_name` None
    names the study after the data. `random_state` seeds the folds, members and sampler.
    """

    validation_is_optimistic = True

    def __init__(self, members: Sequence[MemberSpec] | None = None, n_trials: int = 60,
                 cv: int = 3, prune: bool = True, storage: str | None = None,
                 study_name: str | None = None, kind: TaskKind = "tabular",
                 class_weight: Any = None, random_state: int = 0) -> None:
        self.members = members
        self.n_trials = n_trials
        self.cv = cv
        self.prune = prune
        self.storage = storage
        self.study_name = study_name
        self.kind = kind
        self.class_weight = class_weight
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> OptimisedVotingEnsemble:
        y, y_idx = self._start(y)
        candidates = resolve_members(self.members, self.kind, seed=self.random_state,
                                     class_weight=self.class_weight)
        oof = out_of_fold(candidates, X, y, self._folds())
        search = search_weights(oof, y_idx, n_trials=self.n_trials, seed=self.random_state,
                                storage=self.storage, study_name=self.study_name)
        weights = search.weights
        if self.prune:
            kept = prune_members(oof, y_idx, weights=weights).kept
            weights = {n: (w if n in kept else 0.0) for n, w in weights.items()}
        self.weights_ = {n: w for n, w in weights.items() if w > 0}
        self.search_ = {"study_name": search.study_name, "n_trials": search.n_trials,
                        "best_search_f1_macro": search.score}
        self.members_ = [(name, estimator.fit(X, y)) for name, estimator in candidates
                         if name in self.weights_]
        self._record(oof, y_idx, soft_vote({n: oof[n] for n in self.weights_}, self.weights_))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "members_")
        return soft_vote({n: self._member_proba(m, X) for n, m in self.members_}, self.weights_)

    def member_roles(self) -> dict[str, Any]:
        return {name: f"weight {self.weights_[name]:.2f}" for name, _ in self.members_}


def _no_space(trial: optuna.Trial) -> dict[str, Any]:
    """Ensembles tune themselves inside `fit`; an outer search would repeat it per trial."""
    return {}


ENSEMBLE_ALGORITHMS: tuple[Algorithm, ...] = tuple(
    Algorithm(name, BOTH, make, {}, _no_space, class_weight=True, seeded=True,
              interpretability=0.2, description=description, takes_kind=True, opt_in=True)
    for name, make, description in (
        ("stacking", StackingEnsemble,
         "three-level stacking of catalogue members on out-of-fold probabilities"),
        ("dynamic_selection", DynamicSelectionEnsemble,
         "KNORA-E / KNORA-U dynamic selection of catalogue members per row"),
        ("voting_optimised", OptimisedVotingEnsemble,
         "soft voting with Optuna-chosen, pruned members and weights"),
        ("blending", BlendingEnsemble,
         "members fitted outside a held-out slice, a meta-model on their slice probabilities"),
    )
)
