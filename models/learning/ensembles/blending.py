"""Blending: members fitted on one part of the rows, a meta-model on their held-out outputs.

Blending is stacking with one held-out slice in place of cross-validation folds:

1. a stratified, seeded `holdout_size` slice of the training rows (the *blend* slice) is set
   aside; the members are fitted once, on the other rows only;
2. the meta-model (logistic regression from the catalogue, as stacking's final level) learns
   from the members' predicted probabilities on the blend slice, rows none of them was fitted
   on. A member that memorises its training rows (a 1-nearest-neighbour gives the true label
   with probability 1 on every row it saw) therefore cannot fool the meta-model: what the
   meta-model sees is how the member does on new rows.

The members are not refitted on all rows by default (`refit=False`), and that is the point of
blending rather than an economy alone. The meta-model's weights describe the members *as
fitted on the other rows*: a refitted member has seen a third more rows and is more confident
(a forest's or a neighbour model's probabilities move most), so the meta-model would combine
outputs of a kind it never learned from; kept as they are, the members that predict are the
very ones whose held-out outputs it learned, and the validation figures recorded describe the
model that serves. It also keeps blending cheap, each member fitted once (stacking fits each
`cv + 1` times), which is what it trades against stacking's use of every row. `refit=True`
refits the members on all rows after the meta-model is fitted (as stacking does), for data
where the held-out quarter is too many rows to leave out.

Recorded evidence (see `models.learning.ensembles.base`) is measured on the blend slice: each
member's macro F1 there, and the ensemble's from the meta-model's out-of-fold outputs on the
slice (its own folds), so the meta-model is never scored on rows it learned from; only when
some class has a single row in the slice is the score in-sample, and the summary says so.
`fit_index_` and `holdout_index_` keep which rows played which part.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.utils import _safe_indexing, indexable
from sklearn.utils.validation import check_is_fitted

from models.data.spec import TaskKind
from models.learning.ensembles.base import EnsembleError, EnsembleMixin, MemberSpec, resolve_members

META_FOLDS = 5


def blend_split(y_idx: np.ndarray, holdout_size: float, seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (fit part, blend slice), stratified when every class allows it.

    Stratification needs two rows of each class and room for every class on both sides;
    tiny data without it is split at random (the members then may miss a class, which
    `_member_proba` fills with zeros).
    """
    rows = np.arange(len(y_idx))
    counts = np.bincount(y_idx)
    counts = counts[counts > 0]
    n_holdout = int(np.ceil(holdout_size * len(rows)))
    room = min(n_holdout, len(rows) - n_holdout) >= len(counts)
    stratify = y_idx if counts.min() >= 2 and room else None
    fit_rows, holdout_rows = train_test_split(rows, test_size=holdout_size, stratify=stratify,
                                              random_state=seed)
    return np.sort(fit_rows), np.sort(holdout_rows)


class BlendingEnsemble(EnsembleMixin):
    """Members on one part, a meta-model on their blend-slice probabilities (module docstring).

    `members` and `meta` are catalogue names or `(name, estimator)` pairs; the meta-model sees
    probabilities, never the raw features. `holdout_size` is the share of rows in the blend
    slice; `refit` refits the members on all rows once the meta-model is fitted.
    """

    def __init__(self, members: Sequence[MemberSpec] | None = None,
                 meta: MemberSpec = "logistic_regression", holdout_size: float = 0.25,
                 refit: bool = False, kind: TaskKind = "tabular", class_weight: Any = None,
                 random_state: int = 0) -> None:
        self.members = members
        self.meta = meta
        self.holdout_size = holdout_size
        self.refit = refit
        self.kind = kind
        self.class_weight = class_weight
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> BlendingEnsemble:
        y, y_idx = self._start(y)
        X, y = indexable(X, y)          # same length; rows can be taken by position
        if not 0.0 < self.holdout_size < 1.0:
            raise EnsembleError(f"holdout_size must be in (0, 1), got {self.holdout_size}")
        self.fit_index_, self.holdout_index_ = blend_split(y_idx, self.holdout_size,
                                                           self.random_state)
        x_fit, y_fit = _safe_indexing(X, self.fit_index_), y[self.fit_index_]
        x_blend, y_blend = _safe_indexing(X, self.holdout_index_), y[self.holdout_index_]
        if len(np.unique(y_blend)) < 2:
            raise EnsembleError("the blend slice holds one class only; blending needs more "
                                "rows or a larger holdout_size")
        members = resolve_members(self.members, self.kind, seed=self.random_state,
                                  class_weight=self.class_weight)
        (_, meta), = resolve_members([self.meta], None, seed=self.random_state,
                                     class_weight=self.class_weight)
        self.members_ = [(name, estimator.fit(x_fit, y_fit)) for name, estimator in members]
        probas = {name: self._member_proba(member, x_blend) for name, member in self.members_}
        z = np.hstack(list(probas.values()))
        self.meta_ = clone(meta).fit(z, y_blend)
        blend_idx = np.searchsorted(self.classes_, y_blend)
        self._record(probas, blend_idx, self._honest_meta_proba(meta, z, y_blend))
        if self.refit:
            self.members_ = [(name, clone(estimator).fit(X, y))
                             for name, estimator in members]
        return self

    def _honest_meta_proba(self, meta: Any, z: np.ndarray, y_blend: np.ndarray) -> np.ndarray:
        """The meta-model's probabilities on the blend slice, out of fold on the slice.

        Sets `meta_in_sample_` when some class has a single blend row (no folds possible):
        the score is then the fitted meta-model's own, on its training rows.
        """
        smallest = int(np.bincount(np.unique(y_blend, return_inverse=True)[1]).min())
        self.meta_in_sample_ = smallest < 2
        if self.meta_in_sample_:
            return self._member_proba(self.meta_, z)
        folds = StratifiedKFold(min(META_FOLDS, smallest), shuffle=True,
                                random_state=self.random_state)
        oof = cross_val_predict(clone(meta), z, y_blend, cv=folds, method="predict_proba")
        out = np.zeros((len(y_blend), len(self.classes_)))
        out[:, np.searchsorted(self.classes_, np.unique(y_blend))] = oof
        return out

    def blend_features(self, X: Any) -> np.ndarray:
        """The meta-model's inputs for X: the members' probabilities side by side."""
        check_is_fitted(self, "meta_")
        return np.hstack([self._member_proba(member, X) for _, member in self.members_])

    def predict_proba(self, X: Any) -> np.ndarray:
        z = self.blend_features(X)
        return self._member_proba(self.meta_, z)

    def member_roles(self) -> dict[str, Any]:
        role = "refitted on all rows" if self.refit else "fitted outside the blend slice"
        return {name: role for name, _ in self.members_}

    def ensemble_summary(self) -> dict[str, Any]:
        summary = super().ensemble_summary()
        summary["validation_is_optimistic"] = bool(self.meta_in_sample_)
        return summary
