"""What the route modules share: the app's components, the tags, the error responses every
route documents, and the answer to a body that does not match its schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Response
from flask_openapi3 import Tag
from pydantic import BaseModel, ValidationError

from models.serving.batching import SharedScorer
from models.serving.config import ServingConfig
from models.serving.costs import CostMeter
from models.serving.edges import EdgeSettings
from models.serving.errors import ApiError, error
from models.serving.logs import PredictionLog
from models.serving.schemas import field_errors
from models.serving.store import ModelStore

ERRORS: dict[str | int, type[BaseModel] | dict[Any, Any] | None] = {
    code: ApiError for code in (400, 404, 408, 413, 415, 422, 503)}
PREDICT_TAG = Tag(name="predict", description="Predictions of the champions")
INFO_TAG = Tag(name="models", description="What is being served")
ADMIN_TAG = Tag(name="admin", description="Operator calls (need the admin token)")


@dataclass(frozen=True)
class RouteContext:
    """The components of one app that its routes answer from."""

    store: ModelStore
    log: PredictionLog
    config: ServingConfig
    edges: EdgeSettings
    scorer: SharedScorer = field(default_factory=SharedScorer)
    costs: CostMeter | None = None       # CPU seconds per model version (models.serving.costs)


def validation_failed(exc: ValidationError) -> Response:
    return error(422, "the request does not match the schema", field_errors(exc))
