"""POST /v1/admin/reload and /v1/admin/traffic: operator calls behind the admin token, and
`refusal`, the check that `create_app`'s before-request hook runs on every /v1/admin/ path
before anything else of the request is read."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify, request
from flask_openapi3 import OpenAPI
from pydantic import BaseModel

from models.registry import manifest
from models.serving.edges import token_matches
from models.serving.errors import ApiError, ReloadAnswer, TrafficAnswer, error
from models.serving.routes.common import ADMIN_TAG, ERRORS, RouteContext
from models.serving.schemas import TrafficRequest
from warehouse import get_settings

ADMIN_ERRORS: dict[str | int, type[BaseModel] | dict[Any, Any] | None] = {
    401: ApiError, 403: ApiError}


def refusal() -> Response | None:
    """403 when admin calls are disabled, 401 when the token is missing or wrong."""
    token = get_settings().admin_token
    if not token:
        return error(403, "admin calls are disabled: set OVERNIGHT_ADMIN_TOKEN",
                     [{"field": "Authorization", "problem": "no admin token configured"}])
    if not token_matches(request.headers.get("Authorization", ""), token):
        return error(401, "admin token missing or wrong",
                     [{"field": "Authorization", "problem": "expected Bearer <token>"}],
                     headers={"WWW-Authenticate": "Bearer"})
    return None


def register(app: OpenAPI, ctx: RouteContext) -> None:
    store = ctx.store

    @app.post("/v1/admin/reload", tags=[ADMIN_TAG], summary="Reload models in every worker",
              description="Authenticated before anything else is read; takes no body.",
              security=[{"admin_token": []}], responses={200: ReloadAnswer, **ADMIN_ERRORS})
    def admin_reload() -> Response:
        traffic = manifest.read_traffic()
        traffic.reload_token = uuid.uuid4().hex
        manifest.write_traffic(traffic)
        switched = store.refresh(force=True)
        return jsonify({"switched": switched, "ready": store.ready()})

    @app.post("/v1/admin/traffic", tags=[ADMIN_TAG], summary="Set shadow and canary share",
              description="Authenticated before the body is read.",
              security=[{"admin_token": []}],
              responses={200: TrafficAnswer, **ADMIN_ERRORS, **ERRORS})
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
