"""The Flask prediction API (flask-openapi3): every dataset's champion behind one app.

The app is thin: requests are validated by the pydantic models of `schemas` (which also make
the OpenAPI document), scored by `scoring.score_frame`, logged by `logs.PredictionLog`, and
answered by whichever model the `store.ModelStore` holds at that moment. Everything a client
can send wrong gets a 4xx with a JSON body naming the field and the problem; an unexpected
failure of ours is a 500 with a request id, logged with its traceback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from typing import Any

import orjson
import pandas as pd
from flask import Response, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask_openapi3 import Info, OpenAPI, Tag
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import BadRequest, HTTPException

from models.serving import manifest, metrics
from models.serving.config import ServingConfig
from models.serving.logs import PredictionLog, land_alert, land_feedback
from models.serving.schemas import (
    DatasetPath,
    ErrorResponse,
    FeedbackRequest,
    FeedbackResponse,
    ModelInfo,
    ModelsResponse,
    PredictQuery,
    PredictResponse,
    TrafficRequest,
    field_errors,
    predict_body_model,
)
from models.serving.scoring import log_rows, new_prediction_id, score_frame
from models.serving.store import LoadedModel, ModelStore
from warehouse import get_settings

log = logging.getLogger(__name__)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
LIVE_APPS: list[OpenAPI] = []   # this process's apps, flushed by gunicorn's worker_exit
ERRORS: dict[str | int, type[BaseModel] | dict[Any, Any] | None] = {
    code: ErrorResponse for code in (400, 404, 413, 415, 422, 503)}


class FastJSONProvider(DefaultJSONProvider):
    """Responses encoded by orjson (several times faster on 1000-record answers); requests
    still parsed by the standard library, which reads NaN and Infinity so that validation can
    name the field that holds one instead of refusing the whole body."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=str).decode()


def error(status: int, message: str, details: list[dict[str, str]] | None = None) -> Response:
    response = jsonify({"error": message, "details": details or []})
    response.status_code = status
    return response


def validation_failed(exc: ValidationError) -> Response:
    return error(422, "the request does not match the schema", field_errors(exc))


def routed_to_challenger(key: str, share: float) -> bool:
    """A stable choice: the same routing key always gets the same answer for one share."""
    if share <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64
    return bucket < share


def _land_refusal(dataset: str, message: str, details: dict[str, Any]) -> None:
    metrics.REFUSED.labels(dataset).inc()
    land_alert("artifact_refused", message, severity="critical", dataset=dataset,
               details=details,
               dedupe_key=f"artifact_refused:{dataset}:{details.get('model_version')}")


def _model_info(store: ModelStore, loaded: LoadedModel) -> dict[str, Any]:
    card = loaded.card
    challenger = (manifest.read_aliases() or {"datasets": {}})["datasets"].get(
        loaded.dataset, {}).get("challenger")
    return {
        "dataset": loaded.dataset, "model_version": loaded.model_version,
        "alias": loaded.alias, "algorithm": card.get("algorithm", ""),
        "trained_at": card.get("trained_at"), "data_until": card.get("data_until"),
        "metrics": {k: v for k, v in card.get("metrics", {}).items()
                    if k in ("accuracy", "balanced_accuracy", "f1_macro", "log_loss", "n",
                             "review_share")},
        "classes": list(loaded.spec.classes),
        "confidence_threshold": loaded.spec.confidence_threshold,
        "input_schema": store.records[loaded.dataset].model_json_schema(),
        "challenger": challenger["model_version"] if challenger else None,
        "traffic": store.traffic.for_dataset(loaded.dataset).model_dump(),
    }


def create_app(config: ServingConfig | None = None, store: ModelStore | None = None
               ) -> OpenAPI:
    """The API for every configured dataset (one route per dataset, so the OpenAPI document
    shows each dataset's own record schema)."""
    config = config or ServingConfig()
    predictions_log = PredictionLog(flush_rows=config.flush_rows,
                                    flush_seconds=config.flush_seconds)
    store = store or ModelStore(config.datasets, poll_seconds=config.poll_seconds,
                                on_refused=_land_refusal)
    store.refresh()
    if config.background:
        store.start()
        predictions_log.start()

    app = OpenAPI(__name__, info=Info(title="overnight serving API", version="1"),
                  validation_error_status=422, validation_error_model=ErrorResponse,
                  validation_error_callback=validation_failed, doc_prefix="/docs",
                  security_schemes={"admin_token": {"type": "http", "scheme": "bearer"}})
    app.json = FastJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.extensions["overnight"] = {"store": store, "log": predictions_log, "config": config}
    LIVE_APPS.append(app)
    predict_tag = Tag(name="predict", description="Predictions of the champions")
    info_tag = Tag(name="models", description="What is being served")
    admin_tag = Tag(name="admin", description="Operator calls (need the admin token)")

    @app.before_request
    def check_body() -> Response | None:
        g.started = time.perf_counter()
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if REQUEST_ID.match(supplied) else uuid.uuid4().hex
        if request.method != "POST":
            return None
        if not request.is_json:
            return error(415, "send a JSON body with Content-Type: application/json",
                         [{"field": "Content-Type",
                           "problem": f"got {request.mimetype or 'none'}"}])
        try:
            parsed = request.get_json()     # parsed once: the validation reuses Flask's cache
        except BadRequest as exc:
            if exc.code == 413:
                raise
            return error(400, "the body is not valid JSON",
                         [{"field": "body", "problem": str(exc.description)[:200]}])
        if not isinstance(parsed, dict | list):
            return error(422, "the request does not match the schema", [{
                "field": "body", "problem": "expected a JSON object or an array, "
                f"got {type(parsed).__name__}"}])
        return None

    @app.after_request
    def count(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        dataset = (request.view_args or {}).get("dataset", g.get("dataset", ""))
        metrics.REQUESTS.labels(dataset, endpoint, str(response.status_code)).inc()
        if "started" in g:
            metrics.LATENCY.labels(dataset, endpoint).observe(time.perf_counter() - g.started)
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        if code == 413:
            return error(413, f"the body is larger than {config.max_body_bytes} bytes",
                         [{"field": "body", "problem": "too large"}])
        return error(code, exc.name.lower(), [{"field": request.path,
                                               "problem": exc.description or exc.name}])

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("request %s failed", g.get("request_id"))
        return error(500, f"internal error (request {g.get('request_id')}); it is logged")

    def score(dataset: str, body: Any, explain: bool) -> Response:
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
        predictions_log.append(rows)
        out = []
        for i, row in enumerate(rows[:len(items)]):
            metrics.PREDICTIONS.labels(dataset, answering.model_version,
                                       row["predicted_class"], "served").inc()
            item = {"prediction_id": row["prediction_id"],
                    "class_name": row["predicted_class"], "class_index": row["predicted_index"],
                    "probabilities": row["probabilities"], "confidence": row["confidence"],
                    "needs_review": row["needs_review"],
                    "model_version": answering.model_version, "alias": answering.alias}
            if explain:
                item["explanation"] = explain_row(answering, frame.iloc[[i]])
            out.append(item)
        return jsonify({"request_id": g.request_id, "dataset": dataset, "predictions": out})

    for dataset in store.datasets:
        if dataset not in store.specs:
            continue
        body_model = predict_body_model(store.specs[dataset], store.records[dataset],
                                        config.max_batch)

        def view(query: PredictQuery, body: BaseModel, _dataset: str = dataset) -> Response:
            return score(_dataset, body, query.explain)

        view.__annotations__ = {"query": PredictQuery, "body": body_model,
                                "return": Response}
        view.__name__ = f"predict_{dataset}"
        app.post(f"/v1/datasets/{dataset}/predict", tags=[predict_tag],
                 summary=f"Predict {dataset}", responses={200: PredictResponse, **ERRORS},
                 operation_id=f"predict_{dataset}")(view)

    @app.post("/v1/datasets/<dataset>/predict", doc_ui=False)
    def predict_unknown(path: DatasetPath) -> Response:
        return error(404, f"unknown dataset {path.dataset!r}",
                     [{"field": "dataset", "problem": "served datasets are "
                       + (", ".join(store.datasets) or "none")}])

    @app.post("/v1/feedback", tags=[predict_tag], summary="Ground-truth labels",
              responses={202: FeedbackResponse, **ERRORS})
    def feedback(body: FeedbackRequest) -> Response:
        spec = store.specs.get(body.dataset)
        if spec is None:
            return error(404, f"unknown dataset {body.dataset!r}",
                         [{"field": "dataset", "problem": "not served here"}])
        wrong = [{"field": f"labels[{i}].label",
                  "problem": f"{item.label!r} is not one of {', '.join(spec.classes)}"}
                 for i, item in enumerate(body.labels) if item.label not in spec.classes]
        if wrong:
            return error(422, "unknown class labels", wrong)
        land_feedback(body.dataset, [item.model_dump() for item in body.labels],
                      source=f"api:{g.request_id}")
        response = jsonify({"accepted": len(body.labels)})
        response.status_code = 202
        return response

    @app.get("/v1/models", tags=[info_tag], summary="Every served model",
             responses={200: ModelsResponse})
    def list_models() -> Response:
        models, unavailable = [], {}
        for dataset in store.datasets:
            loaded = store.get(dataset)
            if loaded is None:
                unavailable[dataset] = store.problem(dataset) or ""
            else:
                models.append(_model_info(store, loaded))
        return jsonify({"models": models, "unavailable": unavailable})

    @app.get("/v1/datasets/<dataset>/model", tags=[info_tag], summary="One dataset's model",
             responses={200: ModelInfo, 404: ErrorResponse, 503: ErrorResponse})
    def dataset_model(path: DatasetPath) -> Response:
        if path.dataset not in store.datasets:
            return error(404, f"unknown dataset {path.dataset!r}",
                         [{"field": "dataset", "problem": "not served here"}])
        loaded = store.get(path.dataset)
        if loaded is None:
            return error(503, f"no model to serve for {path.dataset}",
                         [{"field": "dataset", "problem": store.problem(path.dataset) or ""}])
        return jsonify(_model_info(store, loaded))

    @app.get("/health", summary="The process is alive")
    def health() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/ready", summary="Every configured dataset has a verified champion")
    def ready() -> Response:
        serving = {d: m.model_version for d in store.datasets if (m := store.get(d))}
        problems = {d: p for d in store.datasets if (p := store.problem(d))}
        response = jsonify({"ready": not problems and bool(store.datasets),
                            "serving": serving, "problems": problems})
        response.status_code = 200 if not problems and store.datasets else 503
        return response

    @app.get("/metrics", summary="Prometheus metrics")
    def prometheus() -> Response:
        for dataset in store.datasets:
            for alias in ("champion", "challenger"):
                if (loaded := store.get(dataset, alias)) is not None:
                    metrics.MODEL_INFO.labels(dataset, alias, loaded.model_version).set(1)
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

    @app.get("/openapi.json", doc_ui=False)
    def openapi_document() -> Response:
        return jsonify(app.api_doc)

    def admin_refusal() -> Response | None:
        token = get_settings().admin_token
        if not token:
            return error(403, "admin calls are disabled: set OVERNIGHT_ADMIN_TOKEN",
                         [{"field": "Authorization", "problem": "no admin token configured"}])
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            return error(401, "admin token missing or wrong",
                         [{"field": "Authorization", "problem": "expected Bearer <token>"}])
        return None

    @app.post("/v1/admin/reload", tags=[admin_tag], summary="Reload models in every worker",
              security=[{"admin_token": []}],
              responses={401: ErrorResponse, 403: ErrorResponse})
    def admin_reload() -> Response:
        if (refused := admin_refusal()) is not None:
            return refused
        traffic = manifest.read_traffic()
        traffic.reload_token = uuid.uuid4().hex
        manifest.write_traffic(traffic)
        switched = store.refresh(force=True)
        return jsonify({"switched": switched, "ready": store.ready()})

    @app.post("/v1/admin/traffic", tags=[admin_tag], summary="Set shadow and canary share",
              security=[{"admin_token": []}],
              responses={401: ErrorResponse, 403: ErrorResponse, 404: ErrorResponse,
                         422: ErrorResponse})
    def admin_traffic(body: TrafficRequest) -> Response:
        if (refused := admin_refusal()) is not None:
            return refused
        if body.dataset not in store.datasets:
            return error(404, f"unknown dataset {body.dataset!r}",
                         [{"field": "dataset", "problem": "not served here"}])
        traffic = manifest.read_traffic()
        traffic.datasets[body.dataset] = manifest.DatasetTraffic(
            canary_share=body.canary_share, shadow=body.shadow)
        manifest.write_traffic(traffic)
        store.refresh()
        return jsonify({"dataset": body.dataset, **traffic.datasets[body.dataset].model_dump(),
                        "challenger": (m.model_version if (m := store.get(
                            body.dataset, "challenger")) else None)})

    return app


def explain_row(loaded: LoadedModel, row: pd.DataFrame) -> dict[str, Any]:
    """The model library's per-prediction explanation (words for text, features otherwise)."""
    if loaded.spec.kind == "text":
        from models.text import explain_article

        return json.loads(json.dumps(explain_article(loaded.model, row), default=str))
    from models.explain import explain_prediction

    return explain_prediction(loaded.model, row, loaded.reference(), loaded.spec)
