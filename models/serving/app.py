"""The Flask prediction API (flask-openapi3): every dataset's champion behind one app.

The app is thin: requests are validated by the pydantic models of `schemas` (which also make
the OpenAPI document), scored by `scoring.score_frame`, logged by `logs.PredictionLog`, and
answered by whichever model the `store.ModelStore` holds at that moment. Everything a client
can send wrong gets a 4xx with a JSON body naming the field and the problem; an unexpected
failure of ours is a 500 with a request id, logged with its traceback.

This module sets the app up and holds what every request passes through (the before- and
after-request hooks, the error handlers); the routes themselves live in `routes`, one module
per concern.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import orjson
from flask import Response, g, request
from flask.json.provider import DefaultJSONProvider
from flask_openapi3 import Info, OpenAPI
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from models.serving import metrics
from models.serving.config import ServingConfig
from models.serving.costs import CostMeter
from models.serving.costs import clock as cpu_clock
from models.serving.edges import (
    BadBody,
    BodyTimedOut,
    BodyTooLarge,
    LingeringBody,
    edge_settings,
    metric_dataset,
    parse_json,
    read_body,
)
from models.serving.errors import ApiError, error
from models.serving.logs import PredictionLog, land_alert
from models.serving.routes import RouteContext, admin, register_all
from models.serving.routes.common import validation_failed
from models.serving.routes.predict import routed_to_challenger
from models.serving.store import ModelStore

__all__ = ["LIVE_APPS", "create_app", "routed_to_challenger"]

log = logging.getLogger(__name__)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
LIVE_APPS: list[OpenAPI] = []   # this process's apps, flushed by gunicorn's worker_exit
BODYLESS_POSTS = {"/v1/admin/reload"}     # POST routes that read no body


class FastJSONProvider(DefaultJSONProvider):
    """Responses encoded by orjson (several times faster on 1000-record answers); request
    bodies are parsed by `edges.parse_json` (orjson, the standard parser for what it refuses)."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, default=str).decode()


def _land_refusal(dataset: str, message: str, details: dict[str, Any]) -> None:
    metrics.REFUSED.labels(dataset).inc()
    land_alert("artifact_refused", message, severity="critical", dataset=dataset,
               details=details,
               dedupe_key=f"artifact_refused:{dataset}:{details.get('model_version')}")


def create_app(config: ServingConfig | None = None, store: ModelStore | None = None
               ) -> OpenAPI:
    """The API for every configured dataset (one route per dataset, so the OpenAPI document
    shows each dataset's own record schema)."""
    config = config or ServingConfig()
    predictions_log = PredictionLog(flush_rows=config.flush_rows,
                                    flush_seconds=config.flush_seconds)
    store = store or ModelStore(config.datasets, poll_seconds=config.poll_seconds,
                                on_refused=_land_refusal)
    costs = CostMeter()
    store.refresh()
    if config.background:
        store.start()
        predictions_log.start()
        costs.start()

    app = OpenAPI(__name__, info=Info(title="overnight serving API", version="1"),
                  validation_error_status="422", validation_error_model=ApiError,
                  validation_error_callback=validation_failed, doc_prefix="/docs",
                  security_schemes={"admin_token": {"type": "http", "scheme": "bearer"}})
    app.json = FastJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.wsgi_app = LingeringBody(app.wsgi_app, config.max_body_bytes)  # type: ignore[method-assign]
    edges = edge_settings()
    app.extensions["overnight"] = {"store": store, "log": predictions_log, "config": config,
                                   "edges": edges, "costs": costs}
    ctx = RouteContext(store=store, log=predictions_log, config=config, edges=edges,
                       costs=costs)
    LIVE_APPS.append(app)

    @app.before_request
    def check_request() -> Response | None:
        """Authentication of admin calls first, then the body: size, JSON, nesting, shape."""
        g.started = time.perf_counter()
        g.cpu_started = cpu_clock()         # the request's CPU seconds (models.serving.costs)
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if REQUEST_ID.match(supplied) else uuid.uuid4().hex
        if request.path.startswith("/v1/admin/") and (refused := admin.refusal()) is not None:
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
        except BodyTimedOut:
            return error(408, f"the body did not arrive within {edges.client_seconds:g} s",
                         [{"field": "body", "problem": "sent too slowly"}])
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

    register_all(app, ctx)
    return app
