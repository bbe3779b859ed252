"""Dynamic ensemble selection: per query row, vote only with the members competent near it.

Members are fitted on one part of the training data; the other, held-out part (the
*validation* or DSEL set) records which member is right on which row. A query's competence
region is its k nearest validation rows (in the preprocessed feature space of the pipeline):

- KNORA-Eliminate: the members right on *all* of the region vote; if none is, the region
  shrinks from its far end until some member is right on all of what is left;
- KNORA-Union, when no member is right even on the nearest row: each member votes with as
  many votes as region rows it is right on;
- all members, equally, when no member is right on any region row.

Selected members are combined by (weighted) soft voting of their probabilities. Prediction is
vectorised over the batch: numpy on the (rows x k) neighbour index matrix of scikit-learn's
`NearestNeighbors`, one `predict_proba` per member; there is no Python loop per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted

from models.data.spec import TaskKind
from models.learning.ensembles.base import EnsembleMixin, MemberSpec, resolve_members


def competence_weights(correct: np.ndarray) -> np.ndarray:
    """Each member's vote per row from its hits on the row's region, nearest first.

    `correct` is (rows, k, members) bool: member j right on the i-th nearest validation row.
    Returns (rows, members) float votes: KNORA-E, else KNORA-U, else all members equally.
    """
    rows = np.arange(correct.shape[0])
    # right on every region row up to and including the i-th, per member
    prefix = np.logical_and.accumulate(correct, axis=1)
    # size of the largest region some member is right on throughout (0: none, not even 1)
    depth = prefix.any(axis=2).sum(axis=1)
    eliminate = prefix[rows, np.maximum(depth - 1, 0), :]
    union = correct.sum(axis=1)
    weights = np.where((depth > 0)[:, None], eliminate, union).astype(float)
    weights[weights.sum(axis=1) == 0] = 1.0
    return weights


def combine(weights: np.ndarray, probas: Sequence[np.ndarray]) -> np.ndarray:
    """Per-row weighted mean of the members' probabilities (member by member, in order)."""
    total = np.zeros_like(probas[0])
    for j, proba in enumerate(probas):
        total = total + weights[:, j:j + 1] * proba
    return total / weights.sum(axis=1, keepdims=True)


class DynamicSelectionEnsemble(EnsembleMixin):
    """KNORA-E with KNORA-U fallback over catalogue members (see the module docstring).

    `validation_size` of the training rows (stratified) form the competence region set and
    are not used to fit the members; `k` is the region size.
    """

    def __init__(self, members: Sequence[MemberSpec] | None = None, k: int = 7,
                 validation_size: float = 0.3, kind: TaskKind = "tabular",
                 class_weight: Any = None, random_state: int = 0) -> None:
        self.members = members
        self.k = k
        self.validation_size = validation_size
        self.kind = kind
        self.class_weight = class_weight
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> DynamicSelectionEnsemble:
        y, y_idx = self._start(y)
        counts = np.bincount(y_idx)
        stratify = y if counts.min() >= 2 else None
        x_fit, x_val, y_fit, y_val = train_test_split(
            X, y, test_size=self.validation_size, stratify=stratify,
            random_state=self.random_state)
        self.members_ = [(name, estimator.fit(x_fit, y_fit)) for name, estimator in
                         resolve_members(self.members, self.kind, seed=self.random_state,
                                         class_weight=self.class_weight)]
        self.correct_ = np.column_stack([np.asarray(member.predict(x_val)) == y_val
                                         for _, member in self.members_])
        self.k_ = max(1, min(self.k, len(y_val) - 1))
        self.neighbours_ = NearestNeighbors(n_neighbors=self.k_).fit(x_val)
        probas = [self._member_proba(member, x_val) for _, member in self.members_]
        # leave-one-out on the validation rows: a row is not in its own region here
        region = self.neighbours_.kneighbors(return_distance=False)
        loo = combine(competence_weights(self.correct_[region]), probas)
        self._record(dict(zip([n for n, _ in self.members_], probas, strict=True)),
                     np.searchsorted(self.classes_, y_val), loo)
        return self

    def region(self, X: Any) -> np.ndarray:
        """The (rows, k) indices of each row's nearest validation rows, nearest first."""
        check_is_fitted(self, "neighbours_")
        return self.neighbours_.kneighbors(X, return_distance=False)

    def selection(self, X: Any) -> np.ndarray:
        """The (rows, members) votes each member gets on each row."""
        return competence_weights(self.correct_[self.region(X)])

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "neighbours_")
        probas = [self._member_proba(member, X) for _, member in self.members_]
        return combine(self.selection(X), probas)

    def member_roles(self) -> dict[str, Any]:
        return {name: "selected per row" for name, _ in self.members_}
