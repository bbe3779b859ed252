"""The dataset catalogue: built-in generators, and specs registered in the warehouse.

Built-in datasets (customer, medical, news) come with a generator; a user's dataset comes with
the spec inferred from (or given with) its first file. Either way the spec is stored in the
warehouse's `datasets` table and every later stage reads it from there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import ModuleType

import duckdb
import pandas as pd

from models.generators import customer, medical, news
from models.generators.base import DriftState
from models.spec import DatasetSpec
from warehouse.errors import OvernightError


class UnknownDatasetError(OvernightError):
    pass


@dataclass(frozen=True)
class BuiltinDataset:
    spec: DatasetSpec
    default_rows: int
    generate: Callable[[date, int, int, DriftState], pd.DataFrame]


def _builtin(module: ModuleType) -> BuiltinDataset:
    return BuiltinDataset(module.SPEC, module.DEFAULT_ROWS, module.generate)


BUILTIN: dict[str, BuiltinDataset] = {
    m.DATASET: _builtin(m) for m in (customer, medical, news)
}


def builtin(name: str) -> BuiltinDataset:
    try:
        return BUILTIN[name]
    except KeyError:
        raise UnknownDatasetError(
            f"no generator for dataset {name!r}; built-in datasets: {', '.join(BUILTIN)} "
            "(a dataset of your own enters with `overnight ingest`)"
        ) from None


def rows_table(dataset: str) -> str:
    """Name of the table that holds a dataset's rows (dataset names are identifiers)."""
    return f"rows_{dataset}"


def _sql_type(kind: str) -> str:
    return "DOUBLE" if kind == "numeric" else "VARCHAR"


def register_dataset(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, source: str) -> None:
    """Store a dataset's spec and create its rows table (inside the caller's transaction)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute(
        "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dataset) DO UPDATE"
        " SET spec = excluded.spec, updated_at = excluded.updated_at",
        [spec.name, spec.kind, source, spec.to_json(), now, now],
    )
    columns = ", ".join(f'"{f.name}" {_sql_type(f.type)}' for f in spec.features)
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {rows_table(spec.name)} (batch_id VARCHAR NOT NULL,"
        f' row_number BIGINT NOT NULL, {columns}, "{spec.target}" VARCHAR)'
    )


def stored_spec(con: duckdb.DuckDBPyConnection, name: str) -> DatasetSpec | None:
    row = con.execute("SELECT spec FROM datasets WHERE dataset = ?", [name]).fetchone()
    return DatasetSpec.model_validate(json.loads(row[0])) if row else None


def get_spec(con: duckdb.DuckDBPyConnection, name: str) -> DatasetSpec:
    """The stored spec of a dataset, or the built-in one; a clear error for anything else."""
    spec = stored_spec(con, name)
    if spec is not None:
        return spec
    if name in BUILTIN:
        return BUILTIN[name].spec
    known = [r[0] for r in con.execute("SELECT dataset FROM datasets ORDER BY 1").fetchall()]
    raise UnknownDatasetError(
        f"unknown dataset {name!r}; known: {', '.join(sorted({*known, *BUILTIN}))}"
    )
