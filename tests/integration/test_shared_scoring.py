"""Adaptive batching (`batching.SharedScorer`): requests that arrive while the model is busy
are scored together in one call, and each gets exactly its own rows' answers."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models.serving.batch import current_champion
from models.serving.batching import SharedScorer
from models.serving.scoring import score_frame
from tests.support.serving_support import records, register_champion


class GatedModel:
    """A real champion whose first call waits until the test opens the gate, so that the
    other requests queue up behind it (what a busy worker sees)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.classes_ = model.classes_
        self.gate = threading.Event()
        self.calls: list[int] = []

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        if not self.calls:
            self.gate.wait(timeout=30)
        self.calls.append(len(x))
        return self.model.predict_proba(x)


@pytest.fixture
def champion(warehouse_path: Path) -> Any:
    register_champion("customer")
    return current_champion("customer")


def test_waiting_requests_share_one_call_and_get_their_own_rows(champion: Any) -> None:
    spec = champion.spec
    frames = [pd.DataFrame(records("customer", 1 + i % 4, seed=i), columns=spec.feature_names)
              for i in range(12)]
    gated, scorer = GatedModel(champion.model), SharedScorer()
    results: dict[int, Any] = {}

    def request(i: int) -> None:
        results[i] = scorer.score(gated, frames[i], spec)

    first = threading.Thread(target=request, args=(0,))
    first.start()
    while not gated.calls and not scorer._busy:      # the first request holds the model
        time.sleep(0.001)
    others = [threading.Thread(target=request, args=(i,)) for i in range(1, 12)]
    for thread in others:
        thread.start()
    while len(scorer._queue) < 11:                   # all eleven wait behind it
        time.sleep(0.001)
    gated.gate.set()
    for thread in [first, *others]:
        thread.join(timeout=30)
    assert gated.calls == [len(frames[0]), sum(len(f) for f in frames[1:])]
    for i, frame in enumerate(frames):
        alone = score_frame(champion.model, frame, spec)
        assert results[i].class_names() == alone.class_names()
        np.testing.assert_allclose(results[i].probabilities, alone.probabilities, rtol=1e-9)
        assert results[i].review_reasons == alone.review_reasons


def test_a_failure_reaches_the_request_that_caused_it(champion: Any) -> None:
    scorer = SharedScorer()
    broken = pd.DataFrame({"age": [30.0]})           # the other features are absent
    with pytest.raises(KeyError):
        scorer.score(champion.model, broken, champion.spec)
    good = pd.DataFrame(records("customer", 2), columns=champion.spec.feature_names)
    assert len(scorer.score(champion.model, good, champion.spec).indices) == 2


@pytest.mark.parametrize("dataset", ["customer", "medical", "news"])
def test_checked_frames_score_as_raw_records_do(warehouse_path: Path, dataset: str) -> None:
    """A frame the columnar checker built goes to the model as it is (`model_ready`): the
    answers are exactly those of the same records scored through `feature_frame`."""
    from models.serving.columnar import ColumnChecker

    register_champion(dataset, algorithm="sgd" if dataset == "news" else "logistic_regression")
    loaded = current_champion(dataset)
    body = records(dataset, 40, seed=5)
    blank = " " if dataset == "news" else None         # text must be a string; blank = missing
    body[0] = {name: blank for name in body[0]}
    checker = ColumnChecker(loaded.spec)
    checked = checker.check_body(body, 1000)
    assert checked is not None and checker.model_ready_for(loaded.spec)
    fast = score_frame(loaded.model, checked, loaded.spec, loaded.conformal, model_ready=True)
    raw = score_frame(loaded.model, pd.DataFrame(body), loaded.spec, loaded.conformal)
    np.testing.assert_array_equal(fast.indices, raw.indices)
    np.testing.assert_array_equal(fast.probabilities, raw.probabilities)
    np.testing.assert_array_equal(fast.needs_review, raw.needs_review)
    assert fast.review_reasons == raw.review_reasons
    assert fast.review_reasons[0] is not None          # the mostly-missing record is flagged
