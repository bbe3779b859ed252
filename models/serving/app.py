"""The Flask prediction API (flask-openapi3): every dataset's champion behind one app.

The app is thin: requests are validated by the pydantic models of `schemas` (which also make
the OpenAPI document), scored by `scoring.score_frame`, logged by `logs.PredictionLog`, and
answered by whichever model the `store.ModelStore` holds at that moment. Everything a client
can send wrong gets a 4xx with a JSON body naming the field and the problem; an unexpected
failure of ours is a 500 with a request id, logged with its traceback.
"""

from __future__ import annotations

import hashlib
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
from pydantic import BaseModel, RootModel, ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from models.registry import manifest
from models.serving import metrics, prediction_ids
from models.serving.config import ServingConfig
from models.serving.edges import (
    BadBody,
    BodyTooLarge,
    EdgeSettings,
    metric_dataset,
    parse_json,
    read_body,
    token_matches,
)
from models.serving.errors import (
    METRICS_RESPONSE,
    ApiError,
    FeedbackAnswer,
    HealthAnswer,
    ReadyAnswer,
    ReloadAnswer,
    TrafficAnswer,
    error,
)
from models.serving.explaining import explain_records
from models.serving.logs import LogRefused, PredictionLog, land_alert, land_feedback
from models.serving.schemas import (
    DatasetPath,
    FeedbackRequest,
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
    code: ApiError for code in (400, 404, 413, 415, 422, 503)}
BODYLESS_POSTS = {"/v1/admin/reload"}     # POST routes that read no body


class AnyPredictBody(RootModel[dict[str, Any] | list[dict[str, Any]]]):
    """One record or a list of records of the dataset named in the path; checked against
    that dataset's current spec (see `GET /v1/datasets/{dataset}/model` for its schema)."""


class FastJSONProvider(DefaultJSONProvider):
    """Responses encoded by orjson (several times faster on 1000-record answers); requests
    still parsed by the standard library, which reads NaN and Infinity so that validation can
    name the field that holds one instead of refusing the whole body."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=str).decode()


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
        "input_schema": store.record_of(loaded.dataset).model_json_schema(),
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
                  validation_error_status="422", validation_error_model=ApiError,
                  validation_error_callback=validation_failed, doc_prefix="/docs",
                  security_schemes={"admin_token": {"type": "http", "scheme": "bearer"}})
    app.json = FastJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    edges = EdgeSettings()
    app.extensions["overnight"] = {"store": store, "log": predictions_log, "config": config,
                                   "edges": edges}
    LIVE_APPS.append(app)
    predict_tag = Tag(name="predict", description="Predictions of the champions")
    info_tag = Tag(name="models", description="What is being served")
    admin_tag = Tag(name="admin", description="Operator calls (need the admin token)")

    @app.before_request
    def check_request() -> Response | None:
        """Authentication of admin calls first, then the body: size, JSON, nesting, shape."""
        g.started = time.perf_counter()
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if REQUEST_ID.match(supplied) else uuid.uuid4().hex
        if request.path.startswith("/v1/admin/") and (refused := admin_refusal()) is not None:
            return refused
        if request.method != "POST" or request.routing_exception is not None \
                or request.path in BODYLESS_POSTS:
            return None         # 404 / 405 are answered by routing; GETs carry no body
        return check_body()

    def check_body() -> Response | None:
        if not request.is_json:
            return error(415, "send a JSON body with Content-Type: application/json",
                         [{"field": "Content-Type",
                           "problem": f"got {request.mimetype or 'none'}"}])
        try:
            data = read_body(request.environ, config.max_body_bytes)
            parsed = parse_json(data, edges.max_json_depth)
        except BodyTooLarge:
            return too_large()
        except BadBody as exc:
            return error(400, "the body is not valid JSON", [{"field": "body",
                                                              "problem": str(exc)}])
        request._cached_data = data                    # Flask reads these, never the stream
        request._cached_json = (parsed, parsed)
        if not isinstance(parsed, dict | list):
            return error(422, "the request does not match the schema", [{
                "field": "body", "problem": "expected a JSON object or an array, "
                f"got {type(parsed).__name__}"}])
        return None

    def too_large() -> Response:
        return error(413, f"the body is larger than {config.max_body_bytes} bytes",
                     [{"field": "body", "problem": "too large"}])

    @app.after_request
    def count(response: Response) -> Response:
        """Metrics with bounded labels: route templates, and served datasets or `_unknown`."""
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        dataset = metric_dataset((request.view_args or {}).get("dataset", g.get("dataset", "")),
                                 store.datasets)
        metrics.REQUESTS.labels(dataset, endpoint, str(response.status_code)).inc()
        if "started" in g:
            metrics.LATENCY.labels(dataset, endpoint).observe(time.perf_counter() - g.started)
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        if code == 413:
            return too_large()
        headers = {}
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return error(code, exc.name.lower(), [{"field": request.path[:200],
                                               "problem": exc.description or exc.name}],
                     headers=headers)

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
            predictions_log.append(rows)
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
            late_bodies[key] = predict_body_model(spec, record, config.max_batch)
        try:
            checked = late_bodies[key].model_validate(body.model_dump())
        except ValidationError as exc:
            return validation_failed(exc)
        return score(path.dataset, checked, query.explain)

    @app.post("/v1/feedback", tags=[predict_tag], summary="Ground-truth labels",
              description="Each label is checked on its own: its prediction id must be one "
              "this platform answered (ids are signed when minted), its label one of the "
              "dataset's classes. Accepted labels are landed; rejected ones are listed with "
              "the reason and never stored.",
              responses={202: FeedbackAnswer, **ERRORS})
    def feedback(body: FeedbackRequest) -> Response:
        spec = store.specs.get(body.dataset)
        if spec is None:
            return error(404, f"unknown dataset {body.dataset!r}",
                         [{"field": "dataset", "problem": "not served here"}])
        accepted, rejected = [], []
        for i, item in enumerate(body.labels):
            if not prediction_ids.is_ours(item.prediction_id):
                problem = "unknown prediction id: this platform never answered it"
            elif item.label not in spec.classes:
                problem = f"{item.label!r} is not one of {', '.join(spec.classes)}"
            else:
                accepted.append(item.model_dump())
                continue
            rejected.append({"index": i, "prediction_id": item.prediction_id,
                             "problem": problem})
        if accepted:
            land_feedback(body.dataset, accepted, source=f"api:{g.request_id}")
        response = jsonify({"accepted": len(accepted), "rejected": rejected})
        response.status_code = 202
        return response

    @app.get("/v1/models", tags=[info_tag], summary="Every served model",
             responses={200: ModelsResponse})
    def list_models() -> Response:
        """Never a 500: a dataset whose model cannot be described is listed as unavailable
        with the reason, and the others are still described."""
        models, unavailable = [], {}
        for dataset in store.datasets:
            loaded = store.get(dataset)
            if loaded is None:
                unavailable[dataset] = store.problem(dataset) or ""
                continue
            try:
                models.append(_model_info(store, loaded))
            except Exception as exc:       # a card from an older or broken registration
                log.exception("cannot describe %s %s", dataset, loaded.model_version)
                unavailable[dataset] = f"cannot describe {loaded.model_version}: {exc!r}"[:300]
        return jsonify({"models": models, "unavailable": unavailable})

    @app.get("/v1/datasets/<dataset>/model", tags=[info_tag], summary="One dataset's model",
             responses={200: ModelInfo, 404: ApiError, 422: ApiError, 503: ApiError})
    def dataset_model(path: DatasetPath) -> Response:
        if path.dataset not in store.datasets:
            return error(404, f"unknown dataset {path.dataset!r}",
                         [{"field": "dataset", "problem": "not served here"}])
        loaded = store.get(path.dataset)
        if loaded is None:
            return error(503, f"no model to serve for {path.dataset}",
                         [{"field": "dataset", "problem": store.problem(path.dataset) or ""}])
        try:
            return jsonify(_model_info(store, loaded))
        except Exception as exc:           # a card it cannot describe: unavailable, not a 500
            log.exception("cannot describe %s %s", path.dataset, loaded.model_version)
            return error(503, f"cannot describe {loaded.model_version}",
                         [{"field": "dataset", "problem": repr(exc)[:300]}])

    @app.get("/health", summary="The process is alive", responses={200: HealthAnswer})
    def health() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/ready", summary="Every configured dataset has a verified champion",
             responses={200: ReadyAnswer, 503: ReadyAnswer})
    def ready() -> Response:
        serving = {d: m.model_version for d in store.datasets if (m := store.get(d))}
        problems = {d: p for d in store.datasets if (p := store.problem(d))}
        response = jsonify({"ready": not problems and bool(store.datasets),
                            "serving": serving, "problems": problems})
        response.status_code = 200 if not problems and store.datasets else 503
        return response

    @app.get("/metrics", summary="Prometheus metrics", responses={200: METRICS_RESPONSE})
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
        if not token_matches(request.headers.get("Authorization", ""), token):
            return error(401, "admin token missing or wrong",
                         [{"field": "Authorization", "problem": "expected Bearer <token>"}],
                         headers={"WWW-Authenticate": "Bearer"})
        return None

    admin_errors: dict[str | int, type[BaseModel] | dict[Any, Any] | None] = {
        401: ApiError, 403: ApiError}

    @app.post("/v1/admin/reload", tags=[admin_tag], summary="Reload models in every worker",
              description="Authenticated before anything else is read; takes no body.",
              security=[{"admin_token": []}], responses={200: ReloadAnswer, **admin_errors})
    def admin_reload() -> Response:
        traffic = manifest.read_traffic()
        traffic.reload_token = uuid.uuid4().hex
        manifest.write_traffic(traffic)
        switched = store.refresh(force=True)
        return jsonify({"switched": switched, "ready": store.ready()})

    @app.post("/v1/admin/traffic", tags=[admin_tag], summary="Set shadow and canary share",
              description="Authenticated before the body is read.",
              security=[{"admin_token": []}],
              responses={200: TrafficAnswer, **admin_errors, **ERRORS})
    def admin_traffic(body: TrafficRequest) -> Response:
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
