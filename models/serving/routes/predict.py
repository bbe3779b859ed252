"""POST /v1/datasets/<dataset>/predict: one route per served dataset (so the OpenAPI document
shows each dataset's own record schema), a catch-all for datasets that arrived later and for
unknown names, and the scoring they share: champion or canary challenger, shadow scoring,
the prediction log on disk before the answer leaves, optional explanations."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pandas as pd
from flask import Response, g, jsonify, request
from flask_openapi3 import OpenAPI
from pydantic import BaseModel, RootModel, ValidationError

from models.serving import metrics
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
from models.serving.scoring import log_rows, new_prediction_id, score_frame


class AnyPredictBody(RootModel[dict[str, Any] | list[dict[str, Any]]]):
    """One record or a list of records of the dataset named in the path; checked against
    that dataset's current spec (see `GET /v1/datasets/{dataset}/model` for its schema)."""


def routed_to_challenger(key: str, share: float) -> bool:
    """A stable choice: the same routing key always gets the same answer for one share."""
    if share <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64
    return bucket < share


def score(ctx: RouteContext, dataset: str, body: Any, explain: bool) -> Response:
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
    dumped = body.model_dump()          # one call into pydantic's core for the whole body
    inputs = dumped if isinstance(dumped, list) else [dumped]
    items = inputs
    if explain and len(items) > edges.explain_max_records:
        return error(422, f"explain=true explains at most {edges.explain_max_records} "
                     f"records per request; this one has {len(items)}", [{
                         "field": "explain", "problem": "send fewer records, or ask "
                         "without explain=true (OVERNIGHT_EXPLAIN_MAX_RECORDS sets "
                         "the limit)"}])
    frame = pd.DataFrame(inputs, columns=answering.spec.feature_names)
    scored = score_frame(answering.model, frame, answering.spec)
    ids = [new_prediction_id() for _ in items]
    latency = (time.perf_counter() - g.started) * 1000
    rows = log_rows(scored, frame, answering.spec, ids=ids,
                    model_version=answering.model_version, alias=answering.alias,
                    role="served", request_id=g.request_id, latency_ms=latency,
                    inputs=inputs)
    if traffic.shadow and challenger is not None and answering is champion:
        shadow = score_frame(challenger.model, frame, challenger.spec)
        rows += log_rows(shadow, frame, challenger.spec,
                         ids=[new_prediction_id() for _ in items],
                         model_version=challenger.model_version, alias="challenger",
                         role="shadow", request_id=g.request_id, inputs=inputs)
    try:                    # on disk before the answer leaves, or no answer
        ctx.log.append(rows)
    except LogRefused as refused:
        response = error(503, "the prediction could not be logged, so it is not answered",
                         [{"field": "prediction_log", "problem": str(refused)}])
        response.headers["Retry-After"] = "5"
        return response
    explanations = explain_records(answering, frame) if explain else None
    out = []
    for i, row in enumerate(rows[:len(items)]):
        metrics.PREDICTIONS.labels(dataset, answering.model_version,
                                   row["predicted_class"], "served").inc()
        item = {"prediction_id": row["prediction_id"],
                "class_name": row["predicted_class"], "class_index": row["predicted_index"],
                "probabilities": row["probabilities"], "confidence": row["confidence"],
                "needs_review": row["needs_review"],
                "review_reason": scored.review_reasons[i],
                "model_version": answering.model_version, "alias": answering.alias}
        if explanations is not None:
            item["explanation"] = explanations[i]
        out.append(item)
    return jsonify({"request_id": g.request_id, "dataset": dataset, "predictions": out})


def register(app: OpenAPI, ctx: RouteContext) -> None:
    _register_dataset_routes(app, ctx)
    _register_catch_all(app, ctx)


def _register_dataset_routes(app: OpenAPI, ctx: RouteContext) -> None:
    store = ctx.store
    for dataset in store.datasets:
        if dataset not in store.specs:
            continue
        body_model = predict_body_model(store.specs[dataset], store.records[dataset],
                                        ctx.config.max_batch)

        def view(query: PredictQuery, body: BaseModel, _dataset: str = dataset) -> Response:
            return score(ctx, _dataset, body, query.explain)

        view.__annotations__ = {"query": PredictQuery, "body": body_model,
                                "return": Response}
        view.__name__ = f"predict_{dataset}"
        app.post(f"/v1/datasets/{dataset}/predict", tags=[PREDICT_TAG],
                 summary=f"Predict {dataset}", responses={200: PredictResponse, **ERRORS},
                 operation_id=f"predict_{dataset}")(view)


def _register_catch_all(app: OpenAPI, ctx: RouteContext) -> None:
    store = ctx.store
    late_bodies: dict[tuple[str, int], type[BaseModel]] = {}

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
        if key not in late_bodies:
            late_bodies[key] = predict_body_model(spec, record, ctx.config.max_batch)
        try:
            checked = late_bodies[key].model_validate(body.model_dump())
        except ValidationError as exc:
            return validation_failed(exc)
        return score(ctx, path.dataset, checked, query.explain)
