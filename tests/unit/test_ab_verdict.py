"""A/B verdicts on fixed counts, against values computed by hand (binomial sums with
`math.comb`, the normal distribution of the standard library) and a published interval."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from monitoring.ab_verdict import (
    ArmCounts,
    PairedCounts,
    canary_verdict,
    newcombe_interval,
    shadow_verdict,
)

Z = NormalDist()


def exact_two_sided(low: int, n: int) -> float:
    """2 P(X <= low) for X ~ Binomial(n, 1/2), low < n / 2."""
    return 2 * sum(math.comb(n, k) for k in range(low + 1)) / 2 ** n


def test_shadow_few_discordant_pairs_use_the_exact_test_and_the_challenger_wins() -> None:
    # 3 pairs where only the champion was right, 12 where only the challenger was
    verdict = shadow_verdict(PairedCounts(70, 3, 12, 15, pairs=130, agreeing=110))
    assert verdict.method == "exact"
    assert verdict.p_value == pytest.approx(1152 / 32768)          # 2 (1+15+105+455) / 2^15
    assert verdict.p_value == pytest.approx(exact_two_sided(3, 15))
    assert verdict.winner == "challenger" and verdict.significant
    assert verdict.champion_accuracy == pytest.approx(0.73)
    assert verdict.challenger_accuracy == pytest.approx(0.82)
    assert verdict.difference == pytest.approx(0.09)
    assert verdict.agreement == pytest.approx(110 / 130)
    assert verdict.labels_needed == 0
    assert "challenger is significantly better" in verdict.sentence()


def test_shadow_many_discordant_pairs_use_chi_square_with_continuity_correction() -> None:
    verdict = shadow_verdict(PairedCounts(120, 40, 20, 20))
    statistic = (abs(40 - 20) - 1) ** 2 / 60
    assert verdict.method == "chi2"
    assert verdict.p_value == pytest.approx(math.erfc(math.sqrt(statistic / 2)))  # chi2, 1 df
    assert verdict.winner == "champion"
    assert (verdict.champion_accuracy, verdict.challenger_accuracy) == (0.8, 0.7)


def test_an_undecided_shadow_verdict_says_how_many_more_pairs_would_decide_it() -> None:
    verdict = shadow_verdict(PairedCounts(70, 10, 14, 6), alpha=0.05, power=0.8)
    assert verdict.p_value == pytest.approx(exact_two_sided(10, 24))
    assert verdict.winner == "undecided"
    psi, delta = 0.24, 0.04            # discordant share, difference of the discordant shares
    needed = (Z.inv_cdf(0.975) * math.sqrt(psi) + Z.inv_cdf(0.8) * math.sqrt(psi - delta ** 2)
              ) ** 2 / delta ** 2                                   # Connor (1987)
    assert verdict.labels_needed == math.ceil(needed) - 100
    assert "more labelled pairs would decide it" in verdict.sentence()


def test_a_tie_is_powered_for_the_smallest_difference_worth_detecting() -> None:
    verdict = shadow_verdict(PairedCounts(80, 5, 5, 10), min_effect=0.05)
    assert verdict.p_value == 1.0 and verdict.winner == "undecided"
    psi, delta = 0.1, 0.05
    needed = (Z.inv_cdf(0.975) * math.sqrt(psi) + Z.inv_cdf(0.8) * math.sqrt(psi - delta ** 2)
              ) ** 2 / delta ** 2
    assert verdict.labels_needed == math.ceil(needed) - 100


def test_no_labelled_pair_is_no_verdict() -> None:
    verdict = shadow_verdict(PairedCounts(0, 0, 0, 0, pairs=40, agreeing=30))
    assert verdict.winner == "no labels" and verdict.agreement == 0.75
    assert verdict.champion_accuracy is None


def test_newcombe_interval_matches_his_published_example() -> None:
    # Newcombe (1998), Stat Med 17:873, example (a): 56/70 vs 48/80, method 10
    low, high = newcombe_interval(ArmCounts(80, 48), ArmCounts(70, 56), 0.95)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def wilson(correct: int, n: int, z: float) -> tuple[float, float]:
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_canary_verdict_by_hand() -> None:
    verdict = canary_verdict(ArmCounts(100, 80), ArmCounts(100, 90), alpha=0.05)
    pooled = 170 / 200
    z = 0.1 / math.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert verdict.z == pytest.approx(z)
    assert verdict.p_value == pytest.approx(2 * (1 - Z.cdf(z)))      # 0.0477
    assert verdict.winner == "challenger"
    z95 = Z.inv_cdf(0.975)
    l1, u1 = wilson(80, 100, z95)
    l2, u2 = wilson(90, 100, z95)
    assert verdict.ci_low == pytest.approx(0.1 - math.sqrt((0.9 - l2) ** 2 + (u1 - 0.8) ** 2))
    assert verdict.ci_high == pytest.approx(0.1 + math.sqrt((u2 - 0.9) ** 2 + (0.8 - l1) ** 2))
    assert verdict.ci_low > 0            # agrees with the test here
    assert verdict.more_champion == verdict.more_challenger == 0


def test_an_undecided_canary_says_how_many_labels_per_arm() -> None:
    verdict = canary_verdict(ArmCounts(120, 96), ArmCounts(80, 68), alpha=0.05, power=0.8)
    assert verdict.winner == "undecided"
    assert verdict.ci_low is not None and verdict.ci_low < 0 < (verdict.ci_high or 0)
    p1, p2 = 0.8, 0.85
    mean = (p1 + p2) / 2
    per_arm = (Z.inv_cdf(0.975) * math.sqrt(2 * mean * (1 - mean))
               + Z.inv_cdf(0.8) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (p2 - p1) ** 2
    assert verdict.labels_needed_per_arm == math.ceil(per_arm)        # 903
    assert verdict.more_champion == math.ceil(per_arm) - 120
    assert verdict.more_challenger == math.ceil(per_arm) - 80
    assert f"{verdict.more_challenger} more labelled challenger answers" in verdict.sentence()


def test_canary_agrees_with_statsmodels_when_it_is_there() -> None:
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    verdict = canary_verdict(ArmCounts(150, 111), ArmCounts(130, 104))
    z, p = proportion.proportions_ztest([104, 111], [130, 150])
    assert verdict.z == pytest.approx(z) and verdict.p_value == pytest.approx(p)
    low, high = proportion.confint_proportions_2indep(104, 130, 111, 150, method="newcomb")
    assert (verdict.ci_low, verdict.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_an_arm_without_labels_is_no_verdict_and_bad_counts_are_refused() -> None:
    assert canary_verdict(ArmCounts(0, 0), ArmCounts(10, 9)).winner == "no labels"
    with pytest.raises(ValueError, match="correct count"):
        canary_verdict(ArmCounts(10, 11), ArmCounts(10, 9))
    with pytest.raises(ValueError, match="alpha"):
        shadow_verdict(PairedCounts(1, 1, 1, 1), alpha=1.5)
