"""The validation gate with live shadow evidence: a significant shadow win stands in for the
held-out comparison's demands (and the recorded reasons say so), a significant shadow loss
blocks, an undecided one changes nothing, and a champion significantly better on the
held-out rows is never overruled."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from models.data.generators import customer
from models.data.spec import feature_frame
from models.learning.catalogue import build_model
from monitoring.ab_verdict import PairedCounts, shadow_verdict
from monitoring.gate import SHADOW_EVIDENCE, GateConfig, judge

DAY = date(2026, 9, 1)
# held-out F1 must beat the champion's by 0.04: a model judged against itself falls short
DEMANDING = GateConfig(min_improvement=0.05)
WIN = shadow_verdict(PairedCounts(150, 5, 30, 15))
LOSS = shadow_verdict(PairedCounts(150, 30, 5, 15))
UNDECIDED = shadow_verdict(PairedCounts(150, 10, 12, 28))


def _fit(seed: int, *, shuffle: bool = False):
    frame = customer.generate(DAY, 2000, seed)
    y = frame[customer.SPEC.target].to_numpy()
    if shuffle:
        y = np.random.default_rng(0).permutation(y)
    return build_model(customer.SPEC, "logistic_regression").fit(
        feature_frame(frame, customer.SPEC), y)


@pytest.fixture(scope="module")
def holdout():
    return customer.generate(date(2026, 9, 3), 800, 5)


@pytest.fixture(scope="module")
def model():
    return _fit(1)


def test_the_shadow_verdicts_are_what_they_claim() -> None:
    assert (WIN.winner, LOSS.winner, UNDECIDED.winner) == ("challenger", "champion",
                                                           "undecided")


def test_a_significant_shadow_win_is_evidence_for_promotion(model, holdout) -> None:
    without = judge(customer.SPEC, model, model, holdout, DEMANDING)
    assert not without.passed
    assert [r.split(":")[0] for r in without.reasons] == ["comparison"]
    assert "shadow" not in {c.name for c in without.checks}

    result = judge(customer.SPEC, model, model, holdout, DEMANDING, shadow=WIN)
    assert result.passed and result.score == 1.0
    checks = {c.name: c for c in result.checks}
    assert checks["comparison"].passed and checks["comparison"].evidence["shadow_win"]
    assert "passed on the significant shadow win" in checks["comparison"].detail
    assert checks["shadow"].passed
    assert result.reasons == [SHADOW_EVIDENCE + WIN.sentence()]
    assert "challenger is significantly better" in result.reasons[0]


def test_an_undecided_shadow_changes_nothing_and_a_loss_blocks(model, holdout) -> None:
    undecided = judge(customer.SPEC, model, model, holdout, DEMANDING, shadow=UNDECIDED)
    assert not undecided.passed
    assert [r.split(":")[0] for r in undecided.reasons] == ["comparison"]
    assert {c.name: c.passed for c in undecided.checks}["shadow"]

    lost = judge(customer.SPEC, model, model, holdout, shadow=LOSS)   # held-out: a tie
    assert not lost.passed
    assert [r.split(":")[0] for r in lost.reasons] == ["shadow"]
    assert "champion is significantly better" in lost.reasons[0]


def test_a_held_out_loss_is_never_overruled_by_a_shadow_win(model, holdout) -> None:
    worse = _fit(2, shuffle=True)
    result = judge(customer.SPEC, worse, model, holdout, shadow=WIN)
    assert not result.passed
    comparison = {c.name: c for c in result.checks}["comparison"]
    assert not comparison.passed and "champion is significantly better" in comparison.detail
    assert SHADOW_EVIDENCE + WIN.sentence() in result.reasons    # considered, and said
