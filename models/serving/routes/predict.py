"""POST /v1/datasets/<dataset>/predict: one route per served dataset (so the OpenAPI document
shows each dataset's own record schema), a catch-all for datasets that arrived later and for
unknown names, and the scoring they share: champion or canary challenger, shadow scoring,
the prediction log on disk before the answer leaves, optional explanations.

Bodies are checked on columns first (`columnar.validated_frame`); only a body that fails that
check goes through the per-record pydantic models, which name every bad field. flask-openapi3
still documents the body model; its own per-request validation is switched off for these
views (`__delay_validate_request__`, the flag its `validate_request` decorator uses).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from flask import Response, g, jsonify, request
from flask_openapi3 import OpenAPI
from pydantic import BaseModel, RootModel, ValidationError

from models.data.spec import DatasetSpec
from models.serving import metrics
from models.serving.columnar import ColumnChecker, validated_frame
from models.serving.costs import clock as cpu_clock
from models.serving.errors import error
from models.serving.explaining import explain_records
from models.serving.logs import LogRefused
from models.serving.routes.common import ERRORS, PREDICT_TAG, RouteContext, validation_failed
from models.serving.schemas import (
    DatasetPath,
    PredictQuery,
    PredictResponse,
    predict_body_model,
)
from models.serving.scoring import Scored, log_block, new_prediction_ids


class AnyPredictBody(RootModel[dict[str, Any] | list[dict[str, Any]]]):
    """One record or a list of records of the dataset named in the path; checked against
    that dataset's current spec (see `GET /v1/datasets/{dataset}/model` for its schema)."""


@dataclass(frozen=True)
class BodyCheck:
    """What checks one dataset's bodies, built once per record schema (not per request)."""

    checker: ColumnChecker
    model: type[BaseModel]
    max_batch: int

    @classmethod
    def of(cls, spec: DatasetSpec, record: type[BaseModel], max_batch: int) -> BodyCheck:
        return cls(ColumnChecker(spec), predict_body_model(spec, record, max_batch), max_batch)

    def frame(self, body: Any) -> pd.DataFrame:
        return validated_frame(body, self.checker, self.model, self.max_batch)


def routed_to_challenger(key: str, share: float) -> bool:
    """A stable choice: the same routing key always gets the same answer for one share."""
    if share <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64
    return bucket < share


def checked_request(check: BodyCheck) -> tuple[pd.DataFrame, bool] | Response:
    """The body's input frame and `explain`, or the 422 naming what is wrong."""
    try:
        explain = (PredictQuery.model_validate(request.args.to_dict()).explain
                   if request.args else False)
        return check.frame(request.get_json(silent=True)), explain
    except ValidationError as exc:
        return validation_failed(exc)


def score(ctx: RouteContext, dataset: str, frame: pd.DataFrame, explain: bool,
          checker: ColumnChecker) -> Response:
    store, edges = ctx.store, ctx.edges
    g.dataset = dataset
    traffic = store.traffic.for_dataset(dataset)
    champion = store.get(dataset)
    if champion is None:
        return error(503, f"no model to serve for {dataset}",
                     [{"field": "dataset", "problem": store.problem(dataset) or ""}])
    challenger = store.get(dataset, "challenger")
    key = request.headers.get("X-Routing-Key") or g.request_id
    answering = champion
    if challenger is not None and routed_to_challenger(key, traffic.canary_share):
        answering = challenger
    count = len(frame)
    if explain and count > edges.explain_max_records:
        return error(422, f"explain=true explains at most {edges.explain_max_records} "
                     f"records per request; this one has {count}", [{
                         "field": "explain", "problem": "send fewer records, or ask "
                         "without explain=true (OVERNIGHT_EXPLAIN_MAX_RECORDS sets "
                         "the limit)"}])
    scored = ctx.scorer.score(answering.model, frame, answering.spec, answering.conformal,
                              model_ready=checker.model_ready_for(answering.spec))
    ids = new_prediction_ids(count)
    latency = (time.perf_counter() - g.started) * 1000
    blocks = [log_block(scored, frame, answering.spec, ids=ids,
                        model_version=answering.model_version, alias=answering.alias,
                        role="served", request_id=g.request_id, latency_ms=latency)]
    shadow_cpu = 0.0
    if traffic.shadow and challenger is not None and answering is champion:
        shadow_started = cpu_clock()
        shadow = ctx.scorer.score(challenger.model, frame, challenger.spec,
                                  challenger.conformal,
                                  model_ready=checker.model_ready_for(challenger.spec))
        blocks.append(log_block(shadow, frame, challenger.spec, ids=new_prediction_ids(count),
                                model_version=challenger.model_version, alias="challenger",
                                role="shadow", request_id=g.request_id))
        shadow_cpu = cpu_clock() - shadow_started
        if ctx.costs is not None:
            ctx.costs.record(dataset, challenger.model_version, count, shadow_cpu)
    try:                    # on disk before the answer leaves, or no answer
        ctx.log.append_blocks(blocks)
    except LogRefused as refused:
        response = error(503, "the prediction could not be logged, so it is not answered",
                         [{"field": "prediction_log", "problem": str(refused)}])
        response.headers["Retry-After"] = "5"
        return response
    explanations = explain_records(answering, frame) if explain else None
    names = scored.class_names()
    for name, times in Counter(names).items():
        metrics.PREDICTIONS.labels(dataset, answering.model_version, name, "served").inc(times)
    answered = jsonify({"request_id": g.request_id, "dataset": dataset,
                        "predictions": answers(scored, names, ids, answering.model_version,
                                               answering.alias, explanations)})
    if ctx.costs is not None:     # the request's CPU from its first hook to its encoded answer
        ctx.costs.record(dataset, answering.model_version, count,
                         cpu_clock() - g.cpu_started - shadow_cpu)
    return answered


def answers(scored: Scored, names: list[str], ids: list[str], model_version: str, alias: str,
            explanations: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The answer of every record, from the scored arrays (one `tolist` per column)."""
    classes = scored.classes
    probabilities = [dict(zip(classes, row, strict=True))
                     for row in np.round(scored.probabilities, 6).tolist()]
    sets = scored.set_names()
    out = [{"prediction_id": pid, "class_name": name, "class_index": index,
            "probabilities": proba, "confidence": confidence, "needs_review": review,
            "review_reason": reason, "prediction_set": members,
            "model_version": model_version, "alias": alias}
           for pid, name, index, proba, confidence, review, reason, members in zip(
               ids, names, scored.indices.tolist(), probabilities,
               scored.confidence.tolist(), scored.needs_review.tolist(),
               scored.review_reasons, sets if sets is not None else [None] * len(ids),
               strict=True)]
    if explanations is not None:
        for item, explanation in zip(out, explanations, strict=True):
            item["explanation"] = explanation
    return out


def register(app: OpenAPI, ctx: RouteContext) -> None:
    _register_dataset_routes(app, ctx)
    _register_catch_all(app, ctx)


def _register_dataset_routes(app: OpenAPI, ctx: RouteContext) -> None:
    store = ctx.store
    for dataset in store.datasets:
        if dataset not in store.specs:
            continue
        check = BodyCheck.of(store.specs[dataset], store.records[dataset],
                             ctx.config.max_batch)

        def view(_dataset: str = dataset, _check: BodyCheck = check) -> Response:
            checked = checked_request(_check)
            if isinstance(checked, Response):
                return checked
            return score(ctx, _dataset, *checked, _check.checker)

        view.__annotations__ = {"query": PredictQuery, "body": check.model,
                                "return": Response}
        view.__name__ = f"predict_{dataset}"
        view.__delay_validate_request__ = True        # type: ignore[attr-defined]
        app.post(f"/v1/datasets/{dataset}/predict", tags=[PREDICT_TAG],
                 summary=f"Predict {dataset}", responses={200: PredictResponse, **ERRORS},
                 operation_id=f"predict_{dataset}")(view)


def _register_catch_all(app: OpenAPI, ctx: RouteContext) -> None:
    store = ctx.store
    late_checks: dict[tuple[str, int], BodyCheck] = {}

    @app.post("/v1/datasets/<dataset>/predict", doc_ui=False)
    def predict_any(path: DatasetPath, query: PredictQuery, body: AnyPredictBody) -> Response:
        """Datasets without a route of their own: those whose first champion arrived after
        the server started (served from the next reload on), and unknown names (404)."""
        if path.dataset not in store.datasets:
            return error(404, f"unknown dataset {path.dataset[:60]!r}",
                         [{"field": "dataset", "problem": "served datasets are "
                           + (", ".join(store.datasets) or "none")}])
        spec, record = store.specs.get(path.dataset), store.records.get(path.dataset)
        if spec is None or record is None:
            return error(503, f"no model to serve for {path.dataset}",
                         [{"field": "dataset", "problem": store.problem(path.dataset) or ""}])
        key = (path.dataset, id(record))
        if key not in late_checks:
            late_checks[key] = BodyCheck.of(spec, record, ctx.config.max_batch)
        check = late_checks[key]
        try:
            frame = check.frame(body.model_dump())
        except ValidationError as exc:
            return validation_failed(exc)
        return score(ctx, path.dataset, frame, query.explain, check.checker)
