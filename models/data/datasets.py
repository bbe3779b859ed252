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

from models.data import identifiers as ids
from models.data.generators import customer, medical, news
from models.data.generators.base import DriftState
from models.data.spec import DatasetSpec
from warehouse.errors import OvernightError

PENDING = "pending"   # datasets.source after `reset-spec` without a file: next file decides


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


def _sql_type(kind: str) -> str:
    return "DOUBLE" if kind == "numeric" else "VARCHAR"


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                      [table]).fetchone()
    return bool(row and row[0])


def ensure_rows_table(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> str:
    """Create the rows table of a spec's revision (internal column names) if it is missing.

    A warehouse written before internal names has `rows_<dataset>` with the users' names in
    the same column order; its rows are copied across (by position, no name is read) and the
    old table dropped, inside the caller's transaction.
    """
    table = ids.rows_table(spec.name, spec.revision)
    if table_exists(con, table):
        return table
    columns = ids.storage_columns(len(spec.features))
    types = [*(_sql_type(f.type) for f in spec.features), "VARCHAR"]
    typed = ", ".join(f"{ids.quote(c)} {t}" for c, t in zip(columns, types, strict=True))
    con.execute(f"CREATE TABLE {ids.quote(table)} (batch_id VARCHAR NOT NULL,"
                f" row_number BIGINT NOT NULL, {typed})")
    legacy = ids.legacy_rows_table(spec.name)
    if spec.revision == 0 and table_exists(con, legacy) and _legacy_width(con, legacy) == (
            len(columns) + 2):
        con.execute(f"INSERT INTO {ids.quote(table)} SELECT * FROM {ids.quote(legacy)}")
        con.execute(f"DROP TABLE {ids.quote(legacy)}")
    return table


def _legacy_width(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = ?",
                      [table]).fetchone()
    return int(row[0]) if row else 0


def register_dataset(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, source: str) -> None:
    """Store a dataset's spec (when it has none yet, waits for one after `reset-spec`, or is
    a generator's, whose code is the truth) and create its rows table, inside the caller's
    transaction. A user's spec changes only through `reset_spec`."""
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute(
        "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dataset) DO UPDATE"
        " SET spec = excluded.spec, kind = excluded.kind, source = excluded.source,"
        " updated_at = excluded.updated_at WHERE datasets.source IN (?, 'generator')",
        [spec.name, spec.kind, source, spec.to_json(), now, now, PENDING],
    )
    ensure_rows_table(con, spec)


def stored_spec(con: duckdb.DuckDBPyConnection, name: str) -> DatasetSpec | None:
    """The registered spec of a dataset (None for one not registered or waiting for a spec)."""
    row = con.execute("SELECT spec, source FROM datasets WHERE dataset = ?", [name]).fetchone()
    if row is None or row[1] == PENDING:
        return None
    return DatasetSpec.model_validate(json.loads(row[0]))


def next_revision(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """The revision a newly registered spec of `name` gets (above any earlier one)."""
    row = con.execute("SELECT spec FROM datasets WHERE dataset = ?", [name]).fetchone()
    return DatasetSpec.model_validate(json.loads(row[0])).revision if row else 0


def get_spec(con: duckdb.DuckDBPyConnection, name: str) -> DatasetSpec:
    """The stored spec of a dataset, or the built-in one; a clear error for anything else."""
    spec = stored_spec(con, name)
    if spec is not None:
        return spec
    if name in BUILTIN:
        return BUILTIN[name].spec
    if con.execute("SELECT 1 FROM datasets WHERE dataset = ?", [name]).fetchone():
        raise UnknownDatasetError(
            f"dataset {name!r} has no spec since `reset-spec`: ingest a file to give it one")
    known = [r[0] for r in con.execute("SELECT dataset FROM datasets ORDER BY 1").fetchall()]
    raise UnknownDatasetError(
        f"unknown dataset {name!r}; known: {', '.join(sorted({*known, *BUILTIN}))}"
    )


class SpecChangeError(OvernightError):
    """A spec change that would leave a serving model or a built-in generator behind."""


def reset_spec(con: duckdb.DuckDBPyConnection, name: str, new: DatasetSpec | None,
               champion: str | None, champion_spec: DatasetSpec | None) -> DatasetSpec | None:
    """Replace a user dataset's spec (inside the caller's transaction); return the new one.

    The new spec gets the next revision: its rows go to a table of their own, so batches of
    the old spec stay in the warehouse (lineage, reports) but are never trained on with the
    new one. Without `new`, the next accepted file's inferred spec becomes the spec. Refused
    while a champion trained on another spec serves the dataset, and for built-in datasets.
    """
    if name in BUILTIN:
        raise SpecChangeError(f"dataset {name!r} is built in: its spec is its generator's")
    row = con.execute("SELECT spec, source FROM datasets WHERE dataset = ?", [name]).fetchone()
    if row is None:
        raise UnknownDatasetError(f"dataset {name!r} has no spec yet: nothing to reset")
    old = DatasetSpec.model_validate(json.loads(row[0]))
    if new is not None and new.name != name:
        raise SpecChangeError(f"the spec file describes dataset {new.name!r}, not {name!r}")
    if champion is not None and (new is None or champion_spec is None
                                 or not champion_spec.same_as(new)):
        raise SpecChangeError(
            f"dataset {name!r}: champion {champion} was trained on the current spec and would "
            "no longer match its inputs; nothing changed (give the new spec a new dataset name)")
    if new is not None and row[1] != PENDING and old.same_as(new):
        return old
    revision = old.revision + 1
    now = datetime.now(UTC).replace(tzinfo=None)
    if new is None:
        con.execute("UPDATE datasets SET source = ?, spec = ?, updated_at = ? WHERE dataset = ?",
                    [PENDING, old.model_copy(update={"revision": revision}).to_json(), now,
                     name])
        return None
    spec = new.model_copy(update={"revision": revision})
    con.execute("UPDATE datasets SET source = 'file', kind = ?, spec = ?, updated_at = ?"
                " WHERE dataset = ?", [spec.kind, spec.to_json(), now, name])
    ensure_rows_table(con, spec)
    return spec
