"""POST /v1/feedback: ground-truth labels for predictions this platform answered, each
checked on its own; accepted ones are landed, rejected ones listed with the reason."""

from __future__ import annotations

from flask import Response, g, jsonify
from flask_openapi3 import OpenAPI

from models.serving import prediction_ids
from models.serving.errors import FeedbackAnswer, error
from models.serving.logs import land_feedback
from models.serving.routes.common import ERRORS, PREDICT_TAG, RouteContext
from models.serving.schemas import FeedbackRequest


def register(app: OpenAPI, ctx: RouteContext) -> None:
    store = ctx.store

    @app.post("/v1/feedback", tags=[PREDICT_TAG], summary="Ground-truth labels",
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
