"""A model version's lineage for the models page: the predictions it made, the training run
that made it and the batches it learnt from, and a prediction's own lineage (the `lineage`
report); drawn as a Graphviz graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from monitoring.board.access import BoardUnavailable
from monitoring.board.queries.sql import report, run_sql


@dataclass(frozen=True)
class Lineage:
    """One version's lineage: predictions -> model -> training run -> training batches."""

    model: dict[str, Any]
    run: dict[str, Any] | None
    batches: pd.DataFrame
    predictions: pd.DataFrame
    example: pd.DataFrame = field(default_factory=pd.DataFrame)


def _record(frame: pd.DataFrame) -> dict[str, Any] | None:
    return None if frame.empty else frame.iloc[0].to_dict()


def lineage(con: duckdb.DuckDBPyConnection, model_version: str) -> Lineage:
    model = _record(run_sql(con, (
        "SELECT model_version, dataset, algorithm, trained_at, run_id, left(sha256, 12) AS sha256,"
        " training_batches FROM model_versions WHERE model_version = $v"), {"v": model_version}))
    if model is None:
        raise BoardUnavailable(f"no model version {model_version!r} in the warehouse")
    run = _record(run_sql(con, (
        "SELECT run_id, pathspec, status, started_at, finished_at, seed FROM training_runs"
        " WHERE run_id = $r"), {"r": model["run_id"]}))
    batches = run_sql(con, (
        "SELECT t.batch_id, b.batch_date, b.source, b.scenario, b.n_rows, b.n_labelled,"
        " b.status FROM (SELECT unnest(training_batches) AS batch_id FROM model_versions"
        " WHERE model_version = $v) t LEFT JOIN batches b USING (batch_id)"
        " ORDER BY b.batch_date"), {"v": model_version})
    predictions = run_sql(con, (
        "SELECT role, count(*) AS predictions, min(predicted_at) AS first,"
        " max(predicted_at) AS last, arg_max(prediction_id, predicted_at) AS latest"
        " FROM predictions WHERE model_version = $v GROUP BY role ORDER BY role"),
        {"v": model_version})
    example = pd.DataFrame()
    if not predictions.empty:
        example = prediction_lineage(con, predictions.sort_values("last").iloc[-1]["latest"])
    return Lineage({k: v for k, v in model.items() if k != "training_batches"}, run, batches,
                   predictions, example)


def prediction_lineage(con: duckdb.DuckDBPyConnection, prediction_id: str) -> pd.DataFrame:
    """The `v_lineage` rows of one prediction: its model, training run and batches (the
    `lineage` report)."""
    return report(con, "lineage", prediction=prediction_id)


def _quote(text: Any) -> str:
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def lineage_dot(found: Lineage) -> str:
    """The lineage as a Graphviz graph, left to right: predictions, model, run, batches."""
    model = f"model {found.model['model_version']}\n{found.model['algorithm']}"
    lines = ["digraph lineage {", "rankdir=LR;",
             'node [shape=box, style="rounded,filled", fillcolor="#f5f7fa", fontname="Helvetica"];',
             f'model [label={_quote(model)}, fillcolor="#dbeafe"];']
    for index, row in enumerate(found.predictions.itertuples(index=False)):
        label = f"{row.predictions} {row.role} predictions"
        lines += [f"pred_{index} [label={_quote(label)}];", f"pred_{index} -> model;"]
    if found.run is not None:
        label = f"training run\n{found.run['pathspec'] or found.run['run_id']}"
        lines += [f"run [label={_quote(label)}];", "model -> run;"]
    source = "run" if found.run is not None else "model"
    for index, row in enumerate(found.batches.itertuples(index=False)):
        label = f"batch {row.batch_id}" + (f"\n{int(row.n_rows)} rows" if pd.notna(row.n_rows)
                                           else "")
        lines += [f"batch_{index} [label={_quote(label)}];", f"{source} -> batch_{index};"]
    return "\n".join([*lines, "}"])
