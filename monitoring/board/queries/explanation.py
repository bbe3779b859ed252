"""The explanation page's questions: one logged prediction by its id, the latest ids to pick
from, and the dataset's champion version.

The id a visitor types is data: it is bound as a parameter, never written into SQL text.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pandas as pd

from monitoring.board.queries.sql import Filters, run_sql, scope

MAX_ID_LENGTH = 200         # longer text is no prediction id of ours (and is not looked up)


def prediction_record(con: duckdb.DuckDBPyConnection, prediction_id: str) -> dict[str, Any] | None:
    """The logged prediction with this id (inputs and probabilities decoded), or None."""
    if not prediction_id or len(prediction_id) > MAX_ID_LENGTH:
        return None
    frame = run_sql(con, (
        "SELECT prediction_id, dataset, model_version, alias, role, request_id, predicted_at,"
        " predicted_class, confidence, needs_review, probabilities, inputs"
        " FROM predictions WHERE prediction_id = $prediction_id"),
        {"prediction_id": prediction_id})
    if frame.empty:
        return None
    row = frame.iloc[0].to_dict()
    for column in ("probabilities", "inputs"):
        value = row[column]
        row[column] = json.loads(value) if isinstance(value, str) else value
    return row


def recent_predictions(con: duckdb.DuckDBPyConnection, filters: Filters,
                       limit: int = 20) -> pd.DataFrame:
    """The latest served or batch predictions within the sidebar's filters (ids to pick)."""
    return run_sql(con, (
        "SELECT prediction_id, dataset, model_version, role, predicted_at, predicted_class,"
        " confidence, needs_review FROM predictions WHERE role <> 'shadow' AND "
        + scope("CAST(predicted_at AS DATE)") + " ORDER BY predicted_at DESC, prediction_id"
        " LIMIT $limit"), {**filters.params(), "limit": int(limit)})


def champion_version(con: duckdb.DuckDBPyConnection, dataset: str) -> str | None:
    """The dataset's current champion version, None when it has none."""
    from models.registry.versions import get_alias

    return get_alias(dataset, "champion", con)
