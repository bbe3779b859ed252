"""The API's routes, one module per concern, each adding its routes to the app with
`register(app, ctx)`; `create_app` keeps the set-up, the hooks and the error handlers.

The order of registration is the order of the OpenAPI document's paths and tags, so it is
fixed here: predictions, feedback, what is served, operations, admin.
"""

from __future__ import annotations

from flask_openapi3 import OpenAPI

from models.serving.routes import admin, feedback, info, ops, predict
from models.serving.routes.common import RouteContext

__all__ = ["RouteContext", "register_all"]


def register_all(app: OpenAPI, ctx: RouteContext) -> None:
    """Every route of the API, in the order the OpenAPI document lists them."""
    predict.register(app, ctx)
    feedback.register(app, ctx)
    info.register(app, ctx)
    ops.register(app, ctx)
    admin.register(app, ctx)
