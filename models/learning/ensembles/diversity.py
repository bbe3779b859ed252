"""Diversity, pruning, uncertainty and cost of an ensemble's members: is each one worth it?

An ensemble only helps when its members make different mistakes, and every member costs fit
and predict time, so these helpers give the evidence to keep or drop one:

- `disagreement` and `q_statistic` (Kuncheva & Whitaker, 2003) compare two members' *oracle*
  outputs (right or wrong on each row), and `pairwise_diversity` / `diversity_summary` do it
  for every pair: disagreement near 0 or Q near 1 means a pair adds little over one member;
- `prune_members`: greedy backward elimination on validation macro F1 of the (weighted) soft
  vote, dropping a member whenever the vote without it scores at least as well;
- `vote_entropy`: per-row uncertainty from how the members' votes split (0 = unanimous);
- `cost_against_best`: fit / predict time and macro F1 of an ensemble against its best member.

Everything is plain numpy on member outputs, so it serves any ensemble of
`models.learning.ensembles.stacking`,
a benchmark or a notebook alike. Results are plain Python values (JSON as they are, except
that an undefined Q-statistic is NaN).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
from sklearn.metrics import f1_score


def macro_f1(y: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    """Macro F1 over class indices 0..n_classes-1 (a class never seen nor predicted scores 0)."""
    return float(f1_score(y, predicted, labels=np.arange(n_classes), average="macro",
                          zero_division=0))


def soft_vote(probas: Mapping[str, np.ndarray], weights: Mapping[str, float] | None = None
              ) -> np.ndarray:
    """The weighted mean of members' probability matrices (equal weights when none given).

    Summed member by member, in order, so that a per-row reference gets the same floats.
    """
    names = list(probas)
    w = {n: 1.0 for n in names} if weights is None else {n: float(weights[n]) for n in names}
    total = sum(w.values())
    if total <= 0:
        raise ValueError("soft voting needs at least one member with a positive weight")
    out = np.zeros_like(np.asarray(probas[names[0]], dtype=float))
    for name in names:
        out = out + w[name] * np.asarray(probas[name], dtype=float)
    return out / total


# --------------------------------------------------------------------------- diversity


def _counts(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, int, int]:
    """N11 (both right), N10 (a right, b wrong), N01, N00 (both wrong)."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("the two oracle vectors differ in length")
    return (int(np.sum(a & b)), int(np.sum(a & ~b)), int(np.sum(~a & b)), int(np.sum(~a & ~b)))


def disagreement(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Share of rows on which exactly one of the two members is right: (N10 + N01) / N."""
    n11, n10, n01, n00 = _counts(correct_a, correct_b)
    n = n11 + n10 + n01 + n00
    return (n10 + n01) / n if n else 0.0


def q_statistic(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Yule's Q of two oracle vectors: (N11 N00 - N01 N10) / (N11 N00 + N01 N10).

    +1: the members are right and wrong together (no gain from combining them); 0: independent
    errors; negative: each tends to be right where the other is wrong. NaN when undefined
    (both products zero, e.g. two members that never err).
    """
    n11, n10, n01, n00 = _counts(correct_a, correct_b)
    denominator = n11 * n00 + n01 * n10
    return (n11 * n00 - n01 * n10) / denominator if denominator else math.nan


def pairwise_diversity(predictions: Mapping[str, np.ndarray], y: Sequence[Any] | np.ndarray
                       ) -> list[dict[str, Any]]:
    """Disagreement and Q-statistic of every pair of members (predicted labels vs truth)."""
    truth = np.asarray(y)
    correct = {name: np.asarray(p) == truth for name, p in predictions.items()}
    return [{"member_a": a, "member_b": b, "disagreement": disagreement(correct[a], correct[b]),
             "q_statistic": q_statistic(correct[a], correct[b])}
            for a, b in combinations(correct, 2)]


def diversity_summary(predictions: Mapping[str, np.ndarray], y: Sequence[Any] | np.ndarray
                      ) -> dict[str, Any]:
    """Mean pairwise disagreement and Q (NaN pairs left out) and the pairs themselves."""
    pairs = pairwise_diversity(predictions, y)
    q_values = [p["q_statistic"] for p in pairs if not math.isnan(p["q_statistic"])]
    return {
        "mean_disagreement": float(np.mean([p["disagreement"] for p in pairs])) if pairs
        else 0.0,
        "mean_q_statistic": float(np.mean(q_values)) if q_values else math.nan,
        "pairs": pairs,
    }


def vote_entropy(votes: np.ndarray) -> np.ndarray:
    """Per row, the entropy of the members' votes, normalised to 0..1 by log(min(m, k)).

    `votes` is (members, rows) of labels. 0 = unanimous; 1 = votes spread as evenly as the
    members and classes allow. Rows where members disagree are the ones to send to review.
    """
    votes = np.asarray(votes)
    m = votes.shape[0]
    labels, codes = np.unique(votes, return_inverse=True)
    codes = codes.reshape(votes.shape)
    k = len(labels)
    if m < 2 or k < 2:
        return np.zeros(votes.shape[1])
    shares = np.stack([(codes == c).sum(axis=0) for c in range(k)], axis=1) / m   # (rows, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(shares > 0, shares * np.log(shares), 0.0)
    return -terms.sum(axis=1) / math.log(min(m, k))


# --------------------------------------------------------------------------- pruning


@dataclass
class PruneResult:
    kept: list[str]
    dropped: list[str]
    score: float                                   # validation macro F1 of the kept members
    history: list[dict[str, Any]] = field(default_factory=list)


def prune_members(probas: Mapping[str, np.ndarray], y: np.ndarray, *,
                  weights: Mapping[str, float] | None = None, tolerance: float = 0.0
                  ) -> PruneResult:
    """Greedy backward elimination of members that add nothing to the soft vote.

    `probas` are validation (out-of-fold) probabilities, `y` class indices. At each step the
    member whose removal gives the best vote is dropped if that vote scores at least the
    current macro F1 minus `tolerance`; it stops when every removal would cost more, or one
    member is left. Ties drop the later member, so the order of `probas` is the preference.
    """
    y = np.asarray(y)
    k = next(iter(probas.values())).shape[1]
    w = {n: 1.0 for n in probas} if weights is None else dict(weights)
    kept = [n for n in probas if w.get(n, 0.0) > 0]

    def score(names: list[str]) -> float:
        return macro_f1(y, soft_vote({n: probas[n] for n in names}, w).argmax(axis=1), k)

    current = score(kept)
    history = [{"members": list(kept), "f1_macro": current}]
    dropped = [n for n in probas if n not in kept]
    while len(kept) > 1:
        trials = [(score([n for n in kept if n != name]), i, name)
                  for i, name in enumerate(kept)]
        best, _, name = max(trials)
        if best < current - tolerance:
            break
        kept.remove(name)
        dropped.append(name)
        current = best
        history.append({"members": list(kept), "f1_macro": current, "dropped": name})
    return PruneResult(kept, dropped, current, history)


# --------------------------------------------------------------------------- cost


def cost_against_best(ensemble: Mapping[str, float], members: Mapping[str, Mapping[str, float]]
                      ) -> dict[str, Any]:
    """The ensemble's fit / predict time and macro F1 against its best member (by macro F1).

    Each mapping holds `fit_seconds`, `predict_seconds` and `f1_macro`. Ratios above 1 mean
    the ensemble is slower; `f1_gain` is what that time buys (negative: it buys nothing).
    """
    best = max(members, key=lambda n: members[n]["f1_macro"])
    ref = members[best]
    return {
        "best_member": best,
        "best_member_f1_macro": float(ref["f1_macro"]),
        "f1_gain": float(ensemble["f1_macro"] - ref["f1_macro"]),
        "fit_ratio": float(ensemble["fit_seconds"] / max(ref["fit_seconds"], 1e-9)),
        "predict_ratio": float(ensemble["predict_seconds"] / max(ref["predict_seconds"], 1e-9)),
    }
