"""GET /v1/models and GET /v1/datasets/<dataset>/model: what is being served, described from
each model's card; a model that cannot be described is reported unavailable, never a 500."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify
from flask_openapi3 import OpenAPI

from models.registry import manifest
from models.serving.errors import ApiError, error
from models.serving.routes.common import INFO_TAG, RouteContext
from models.serving.schemas import DatasetPath, ModelInfo, ModelsResponse
from models.serving.store import LoadedModel, ModelStore

log = logging.getLogger(__name__)


def model_info(store: ModelStore, loaded: LoadedModel) -> dict[str, Any]:
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


def register(app: OpenAPI, ctx: RouteContext) -> None:
    store = ctx.store

    @app.get("/v1/models", tags=[INFO_TAG], summary="Every served model",
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
                models.append(model_info(store, loaded))
            except Exception as exc:       # a card from an older or broken registration
                log.exception("cannot describe %s %s", dataset, loaded.model_version)
                unavailable[dataset] = f"cannot describe {loaded.model_version}: {exc!r}"[:300]
        return jsonify({"models": models, "unavailable": unavailable})

    @app.get("/v1/datasets/<dataset>/model", tags=[INFO_TAG], summary="One dataset's model",
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
            return jsonify(model_info(store, loaded))
        except Exception as exc:           # a card it cannot describe: unavailable, not a 500
            log.exception("cannot describe %s %s", path.dataset, loaded.model_version)
            return error(503, f"cannot describe {loaded.model_version}",
                         [{"field": "dataset", "problem": repr(exc)[:300]}])
