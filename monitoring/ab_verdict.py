"""A/B verdicts of served traffic: is the challenger better than the champion, how sure is
that, and how many more labels would settle it?

Plain functions of counts, so that every figure can be checked by hand (the warehouse queries
that produce the counts are in `monitoring.ab_queries`). Two designs, two analyses:

- **shadow**: the challenger scores the very requests the champion answers, so each labelled
  request is a *pair* of answers. Pairs are compared with McNemar's test on the discordant
  pairs only (champion right and challenger wrong, and the reverse): the exact binomial test
  when there are fewer than 25 of them, the chi-square test with continuity correction
  otherwise (`models.evaluation.statistics.mcnemar_counts`, on `scipy.stats.binomtest`). The
  agreement rate is over every pair, labelled or not. Labels that would decide an open
  verdict: Connor's (1987) sample size for McNemar's test,
  n = (z_{1-a/2} sqrt(psi) + z_{1-b} sqrt(psi - d^2))^2 / d^2, with psi the share of
  discordant pairs and d the difference of their shares.
- **canary**: a share of requests is answered by the challenger instead, so the two arms hold
  different requests: labelled accuracy of each arm, the pooled two-proportion z-test, and
  Newcombe's hybrid score interval (his method 10, from the two arms' Wilson intervals) of
  the difference challenger - champion, at confidence 1 - alpha. Labels per arm that would
  decide an open verdict: the usual two-proportion formula (Fleiss, without continuity
  correction), n = (z_{1-a/2} sqrt(2 pbar qbar) + z_{1-b} sqrt(p1 q1 + p2 q2))^2 / d^2.

Both sample sizes take the observed accuracies as the truth; when the observed difference is
below the policy's `ab_min_effect` (or zero), they are computed for that smallest difference
worth detecting instead, so that "how many more" always has a finite answer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scipy import stats

from models.evaluation.statistics import mcnemar_counts

Winner = Literal["challenger", "champion", "undecided", "no labels"]


@dataclass(frozen=True)
class PairedCounts:
    """Shadow pairs of one champion / challenger pair: labelled pairs by who was right, and
    every pair (labelled or not) with how many gave the same class."""

    both_right: int
    champion_only: int        # champion right, challenger wrong
    challenger_only: int      # challenger right, champion wrong
    both_wrong: int
    pairs: int = 0            # every pair, labelled or not (0: count the labelled ones)
    agreeing: int = 0         # pairs with the same predicted class

    @property
    def labelled(self) -> int:
        return self.both_right + self.champion_only + self.challenger_only + self.both_wrong


@dataclass(frozen=True)
class ShadowVerdict:
    labelled: int
    pairs: int
    agreement: float | None           # share of all pairs with the same class
    champion_accuracy: float | None
    challenger_accuracy: float | None
    difference: float | None          # challenger - champion, on the labelled pairs
    champion_only: int
    challenger_only: int
    p_value: float
    method: str                       # "exact" (binomial) or "chi2" (continuity-corrected)
    alpha: float
    winner: Winner
    labels_needed: int | None         # more labelled pairs that would decide it (0: decided)

    @property
    def significant(self) -> bool:
        return self.winner in ("challenger", "champion")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sentence(self) -> str:
        """One line for a reason, a report or an alert."""
        if self.winner == "no labels":
            return f"no labelled shadow pair yet ({self.pairs} pairs unlabelled)"
        test = f"McNemar {'exact' if self.method == 'exact' else 'chi-square'} " \
               f"p={self.p_value:.3g}"
        counts = (f"{self.labelled} labelled shadow pairs: challenger right alone "
                  f"{self.challenger_only}, champion right alone {self.champion_only}")
        if self.significant:
            return f"the {self.winner} is significantly better ({test}; {counts})"
        more = "" if self.labels_needed is None else \
            f"; about {self.labels_needed} more labelled pairs would decide it"
        return f"no significant difference ({test} >= {self.alpha:g}; {counts}){more}"


@dataclass(frozen=True)
class ArmCounts:
    """Labelled predictions of one canary arm and how many of them were right."""

    labelled: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


@dataclass(frozen=True)
class CanaryVerdict:
    champion_labelled: int
    challenger_labelled: int
    champion_accuracy: float | None
    challenger_accuracy: float | None
    difference: float | None          # challenger - champion
    ci_low: float | None              # Newcombe hybrid score interval of the difference
    ci_high: float | None
    confidence: float                 # 1 - alpha
    z: float | None
    p_value: float | None
    alpha: float
    power: float
    winner: Winner
    labels_needed_per_arm: int | None    # total per arm that would decide it
    more_champion: int | None            # of which still missing, per arm
    more_challenger: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sentence(self) -> str:
        if self.winner == "no labels":
            return (f"not enough labels: {self.champion_labelled} labelled champion answers, "
                    f"{self.challenger_labelled} labelled challenger answers")
        assert self.difference is not None and self.p_value is not None
        interval = (f"difference {self.difference:+.3f}, {self.confidence:.0%} CI "
                    f"[{self.ci_low:+.3f}, {self.ci_high:+.3f}]")
        test = f"two-proportion z-test p={self.p_value:.3g}"
        if self.winner in ("challenger", "champion"):
            return f"the {self.winner} is significantly better ({interval}; {test})"
        return (f"no significant difference ({interval}; {test}); about "
                f"{self.more_champion} more labelled champion answers and "
                f"{self.more_challenger} more labelled challenger answers would decide it at "
                f"power {self.power:g}")


def _z(probability: float) -> float:
    return float(stats.norm.ppf(probability))


def _check(alpha: float, power: float, min_effect: float) -> None:
    for name, value in (("alpha", alpha), ("power", power), ("min_effect", min_effect)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must be in (0, 1), got {value}")


def mcnemar_sample_size(discordant_share: float, difference: float, *, alpha: float,
                        power: float) -> float:
    """Connor's number of pairs for McNemar's test: psi the share of discordant pairs, d the
    difference of the two discordant shares (must not be 0)."""
    if difference == 0:
        raise ValueError("the difference must not be 0")
    psi = max(discordant_share, abs(difference))
    term = _z(1 - alpha / 2) * math.sqrt(psi) + _z(power) * math.sqrt(psi - difference ** 2)
    return term ** 2 / difference ** 2


def two_proportion_sample_size(p1: float, p2: float, *, alpha: float, power: float) -> float:
    """Per-arm size to tell proportions p1 and p2 apart (two-sided, pooled under H0)."""
    if p1 == p2:
        raise ValueError("the proportions must differ")
    mean = (p1 + p2) / 2
    term = (_z(1 - alpha / 2) * math.sqrt(2 * mean * (1 - mean))
            + _z(power) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2)))
    return term ** 2 / (p1 - p2) ** 2


def _effect(observed: float, min_effect: float) -> float:
    """The difference to power for: the observed one, or the smallest worth detecting."""
    if abs(observed) >= min_effect:
        return observed
    return min_effect if observed >= 0 else -min_effect


def _winner(significant: bool, challenger_ahead: bool) -> Winner:
    if not significant:
        return "undecided"
    return "challenger" if challenger_ahead else "champion"


def shadow_verdict(counts: PairedCounts, *, alpha: float = 0.05, power: float = 0.8,
                   min_effect: float = 0.02) -> ShadowVerdict:
    """McNemar's verdict on labelled shadow pairs, the agreement rate and labels needed."""
    _check(alpha, power, min_effect)
    n = counts.labelled
    pairs = counts.pairs or n
    agreement = counts.agreeing / pairs if pairs else None
    b, c = counts.champion_only, counts.challenger_only
    test = mcnemar_counts(b, c, alpha=alpha)
    if n == 0:
        return ShadowVerdict(0, pairs, agreement, None, None, None, b, c, 1.0, test["method"],
                             alpha, "no labels", None)
    winner = _winner(test["significant"], c > b)
    needed: int | None = 0
    if winner == "undecided":
        difference = _effect((c - b) / n, min_effect)
        total = mcnemar_sample_size((b + c) / n, difference, alpha=alpha, power=power)
        needed = max(0, math.ceil(total) - n)
    return ShadowVerdict(
        labelled=n, pairs=pairs, agreement=agreement,
        champion_accuracy=(counts.both_right + b) / n,
        challenger_accuracy=(counts.both_right + c) / n, difference=(c - b) / n,
        champion_only=b, challenger_only=c, p_value=test["p_value"], method=test["method"],
        alpha=alpha, winner=winner, labels_needed=needed)


def wilson_interval(correct: int, labelled: int, confidence: float) -> tuple[float, float]:
    """Wilson's score interval of one proportion (scipy's `binomtest(...).proportion_ci`)."""
    found = stats.binomtest(correct, labelled).proportion_ci(confidence, method="wilson")
    return float(found.low), float(found.high)


def newcombe_interval(champion: ArmCounts, challenger: ArmCounts, confidence: float
                      ) -> tuple[float, float]:
    """Newcombe's hybrid score interval of challenger - champion accuracy (method 10)."""
    p1, p2 = champion.correct / champion.labelled, challenger.correct / challenger.labelled
    l1, u1 = wilson_interval(champion.correct, champion.labelled, confidence)
    l2, u2 = wilson_interval(challenger.correct, challenger.labelled, confidence)
    difference = p2 - p1
    return (difference - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
            difference + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))


def two_proportion_test(champion: ArmCounts, challenger: ArmCounts) -> tuple[float, float]:
    """The pooled two-proportion z statistic (challenger - champion) and its two-sided p."""
    n1, n2 = champion.labelled, challenger.labelled
    pooled = (champion.correct + challenger.correct) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:            # both arms all right or all wrong: nothing tells them apart
        return 0.0, 1.0
    z = (challenger.correct / n2 - champion.correct / n1) / spread
    return z, float(2 * stats.norm.sf(abs(z)))


def canary_verdict(champion: ArmCounts, challenger: ArmCounts, *, alpha: float = 0.05,
                   power: float = 0.8, min_effect: float = 0.02) -> CanaryVerdict:
    """The two arms' labelled accuracy compared: z-test, Newcombe interval, labels needed."""
    _check(alpha, power, min_effect)
    for arm in (champion, challenger):
        if not 0 <= arm.correct <= arm.labelled:
            raise ValueError(f"an arm's correct count must be within 0..labelled, got {arm}")
    confidence = 1 - alpha
    if not champion.labelled or not challenger.labelled:
        return CanaryVerdict(champion.labelled, challenger.labelled, champion.accuracy,
                             challenger.accuracy, None, None, None, confidence, None, None,
                             alpha, power, "no labels", None, None, None)
    p1, p2 = champion.correct / champion.labelled, challenger.correct / challenger.labelled
    z, p_value = two_proportion_test(champion, challenger)
    low, high = newcombe_interval(champion, challenger, confidence)
    winner = _winner(p_value < alpha, p2 > p1)
    per_arm: int | None = None
    more1 = more2 = 0
    if winner == "undecided":
        effect = _effect(p2 - p1, min_effect)
        target = p1 + effect
        if not 0 <= target <= 1:
            target = p1 - effect
        per_arm = math.ceil(two_proportion_sample_size(p1, target, alpha=alpha, power=power))
        more1 = max(0, per_arm - champion.labelled)
        more2 = max(0, per_arm - challenger.labelled)
    return CanaryVerdict(
        champion_labelled=champion.labelled, challenger_labelled=challenger.labelled,
        champion_accuracy=p1, challenger_accuracy=p2, difference=p2 - p1, ci_low=low,
        ci_high=high, confidence=confidence, z=z, p_value=p_value, alpha=alpha, power=power,
        winner=winner, labels_needed_per_arm=per_arm, more_champion=more1,
        more_challenger=more2)
