"""GET /health, /ready, /metrics and /openapi.json: what load balancers, Prometheus and
clients ask of the process, outside the versioned API."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import OpenAPI

from models.serving import metrics
from models.serving.errors import METRICS_RESPONSE, HealthAnswer, ReadyAnswer
from models.serving.routes.common import RouteContext


def register(app: OpenAPI, ctx: RouteContext) -> None:
    store = ctx.store

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
