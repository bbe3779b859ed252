"""The automatic-rollback decision on fixed counts (no warehouse): the test, the margin, the
minimum of labels, the cool-down, a refused artifact and an unusable previous artifact."""

from __future__ import annotations

from datetime import date

import pytest
from scipy.stats import binom, hypergeom

from monitoring.policy import RetrainingPolicy
from monitoring.rollback import (
    BINOMIAL,
    FISHER,
    Counts,
    RollbackError,
    RollbackEvidence,
    drop_test,
    evaluate_rollback,
)

NIGHT = date(2026, 12, 10)
POLICY = RetrainingPolicy(rollback_margin=0.03, rollback_min_labels=200, rollback_alpha=0.05,
                          rollback_cooldown_days=2)


def _evidence(champion: Counts, previous: Counts = Counts(400, 360), **changes) -> RollbackEvidence:
    fields = {"dataset": "customer", "night_date": NIGHT, "champion_version": "customer-v2",
              "previous_version": "customer-v1", "champion": champion, "previous": previous,
              "previous_held_out": 0.88, "switched_on": date(2026, 12, 1)}
    return RollbackEvidence(**{**fields, **changes})


def test_fisher_p_value_is_the_hypergeometric_lower_tail() -> None:
    """One-sided Fisher: P(champion right <= observed) with both margins fixed."""
    champion, previous = Counts(250, 200), Counts(400, 360)
    p_value, test = drop_test(champion, previous, None)
    right = champion.n_correct + previous.n_correct
    by_hand = hypergeom(champion.n_labelled + previous.n_labelled, right,
                        champion.n_labelled).cdf(champion.n_correct)
    assert test == FISHER and p_value == pytest.approx(by_hand, rel=1e-9)


def test_binomial_p_value_against_a_held_out_figure() -> None:
    p_value, test = drop_test(Counts(250, 200), None, 0.88)
    assert test == BINOMIAL and p_value == pytest.approx(binom(250, 0.88).cdf(200), rel=1e-9)
    with pytest.raises(RollbackError):
        drop_test(Counts(0, 0), None, 0.88)
    with pytest.raises(ValueError):
        Counts(10, 11)


def test_a_significant_drop_beyond_the_margin_rolls_back() -> None:
    decision = evaluate_rollback(_evidence(Counts(250, 200)), POLICY)      # 0.80 vs 0.90
    assert decision.rollback and decision.rule == "performance"
    assert decision.accuracy == 0.8 and decision.previous_accuracy == 0.9
    assert decision.accuracy_drop == pytest.approx(0.1)
    assert decision.baseline_source == "labelled" and decision.p_value < 0.05
    assert decision.reason.startswith("Rollback to customer-v1")


def test_a_drop_within_the_margin_does_not_roll_back_whatever_the_labels() -> None:
    decision = evaluate_rollback(_evidence(Counts(40_000, 35_000), Counts(40_000, 36_000)),
                                 POLICY)                                  # 0.875 vs 0.90
    assert decision.p_value < 1e-6                         # significant, yet within the margin
    assert not decision.rollback and "within the margin" in decision.reason


def test_a_drop_beyond_the_margin_on_few_labels_is_not_significant() -> None:
    decision = evaluate_rollback(_evidence(Counts(200, 172), Counts(200, 180)), POLICY)
    assert decision.accuracy_drop > POLICY.rollback_margin
    assert decision.p_value >= 0.05 and not decision.rollback
    assert "not significant" in decision.reason


def test_too_few_labels_abstain() -> None:
    decision = evaluate_rollback(_evidence(Counts(199, 0)), POLICY)
    assert not decision.rollback and decision.p_value is None
    assert "abstains" in decision.reason and "199" in decision.reason


def test_previous_without_labels_is_judged_by_its_held_out_figure() -> None:
    decision = evaluate_rollback(_evidence(Counts(300, 240), Counts(10, 10)), POLICY)
    assert decision.baseline_source == "held-out" and decision.test == BINOMIAL
    assert decision.previous_accuracy == 0.88 and decision.rollback


def test_the_cool_down_holds_a_rollback_on_performance_only() -> None:
    recent = {"switched_on": date(2026, 12, 9)}                  # 1 day ago, cool-down 2 days
    held = evaluate_rollback(_evidence(Counts(250, 200), **recent), POLICY)
    assert not held.rollback and held.cooldown_held and "cool-down" in held.reason
    after = evaluate_rollback(_evidence(Counts(250, 200), switched_on=date(2026, 12, 8)), POLICY)
    assert after.rollback and not after.cooldown_held
    refused = evaluate_rollback(_evidence(Counts(0, 0), refused="sha256 differs", **recent),
                                POLICY)
    assert refused.rollback and refused.rule == "artifact_refused"


def test_the_watch_ends_after_its_days() -> None:
    policy = POLICY.model_copy(update={"rollback_watch_days": 9})
    assert evaluate_rollback(_evidence(Counts(250, 200)), policy).rollback      # 9 days
    late = evaluate_rollback(_evidence(Counts(250, 200), switched_on=date(2026, 11, 30)),
                             policy)                                            # 10 days
    assert not late.rollback and "beyond the 9-day watch" in late.reason


def test_a_restored_champion_is_not_watched_on_performance() -> None:
    decision = evaluate_rollback(_evidence(Counts(250, 200), restored_by_rollback=True), POLICY)
    assert not decision.rollback and "restored by a rollback" in decision.reason


def test_nothing_to_roll_back_to_or_an_unusable_previous_needs_a_person() -> None:
    alone = evaluate_rollback(_evidence(Counts(250, 200), previous_version=None,
                                        refused="forged"), POLICY)
    assert not alone.rollback and alone.needs_person
    broken = evaluate_rollback(_evidence(Counts(250, 200), previous_unusable="sha256 differs"),
                               POLICY)
    assert not broken.rollback and broken.needs_person and "a person must act" in broken.reason
