"""Adaptive batching: concurrent requests of one worker share one `predict_proba` call.

Why: a scikit-learn pipeline pays a fixed price per call (column selection, input checks in
every step: about 5 ms for the customer logistic regression on this machine) that does not
grow with the rows (1000 rows cost about the same). Scored one request at a time, single
records could never pass a few hundred per second on two cores, whatever the HTTP layer does.
The best serving stacks batch dynamically (Triton, TF Serving, Ray Serve); this is that idea
without a timer: the first request to find the model idle scores at once, and requests that
arrive while a call is running wait for it to end and are then scored together, by one of
them. An idle server adds no latency; a busy one turns N calls into one (`/metrics` counts
calls and requests: at 8 connections on 2 workers, 1.6 requests per call). Waiting up to a
few milliseconds for requests still being read was tried and bought nothing there: under the
GIL, a request being read does not progress while another thread scores. Rows of a frame are
scored independently by every pipeline we ship, so a request's answer does not depend on the
requests it was batched with (up to the last bits of floating-point sums).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from models.data.spec import DatasetSpec
from models.evaluation.conformal import ConformalRule
from models.serving import metrics
from models.serving.scoring import Scored, score_frame

MAX_BATCH_ROWS = 20_000         # a batch stops taking requests once it holds this many rows


@dataclass(eq=False)
class _Waiting:
    model: Any
    spec: DatasetSpec
    frame: pd.DataFrame
    rule: ConformalRule | None = None
    model_ready: bool = False
    done: bool = False
    result: Scored | None = None
    error: BaseException | None = field(default=None, repr=False)


def _split(scored: Scored, sizes: list[int]) -> list[Scored]:
    out, start = [], 0
    for size in sizes:
        part = slice(start, start + size)
        out.append(Scored(scored.classes, scored.indices[part], scored.probabilities[part],
                          scored.seconds, scored.needs_review[part],
                          scored.review_reasons[part],
                          None if scored.prediction_sets is None
                          else scored.prediction_sets[part]))
        start += size
    return out


class SharedScorer:
    """One per worker: scores frames, batching those that arrive while the model is busy."""

    def __init__(self, max_rows: int = MAX_BATCH_ROWS) -> None:
        self.max_rows = max_rows
        self._cond = threading.Condition()
        self._busy: set[int] = set()           # ids of models being called right now
        self._queue: list[_Waiting] = []
        self.calls = 0
        self.frames = 0

    def score(self, model: Any, frame: pd.DataFrame, spec: DatasetSpec,
              rule: ConformalRule | None = None, *, model_ready: bool = False) -> Scored:
        """`score_frame` of the frame, in one call with the frames that wait beside it."""
        mine = _Waiting(model, spec, frame, rule, model_ready)
        with self._cond:
            self._queue.append(mine)
            while not mine.done and id(model) in self._busy:
                self._cond.wait()
            if mine.done:
                return self._answer(mine)
            batch = self._take(model, spec, rule)
            self._busy.add(id(model))
        try:
            self._run(batch)
        finally:
            with self._cond:
                self._busy.discard(id(model))
                self._cond.notify_all()
        return self._answer(mine)

    def _take(self, model: Any, spec: DatasetSpec, rule: ConformalRule | None = None
              ) -> list[_Waiting]:
        """The waiting requests for this model and spec, oldest first, up to `max_rows`
        (under the lock; the caller's own request is among them)."""
        batch: list[_Waiting] = []
        rest: list[_Waiting] = []
        rows = 0
        for waiting in self._queue:
            if waiting.model is model and waiting.spec is spec and waiting.rule == rule and (
                    not batch or rows + len(waiting.frame) <= self.max_rows):
                batch.append(waiting)
                rows += len(waiting.frame)
            else:
                rest.append(waiting)
        self._queue = rest
        return batch

    def _run(self, batch: list[_Waiting]) -> None:
        first = batch[0]
        try:
            frame = first.frame if len(batch) == 1 else pd.concat(
                [w.frame for w in batch], ignore_index=True)
            scored = score_frame(first.model, frame, first.spec, first.rule,
                                 model_ready=all(w.model_ready for w in batch))
            parts = [scored] if len(batch) == 1 else _split(scored, [len(w.frame)
                                                                      for w in batch])
            for waiting, part in zip(batch, parts, strict=True):
                waiting.result = part
        except BaseException as error:   # every request of the batch gets the failure
            for waiting in batch:
                waiting.error = error
        with self._cond:
            for waiting in batch:
                waiting.done = True
            self.calls += 1
            self.frames += len(batch)
        metrics.SCORING_CALLS.labels(first.spec.name).inc()
        metrics.SCORED_FRAMES.labels(first.spec.name).inc(len(batch))

    @staticmethod
    def _answer(waiting: _Waiting) -> Scored:
        if waiting.error is not None:
            raise waiting.error
        assert waiting.result is not None
        return waiting.result

