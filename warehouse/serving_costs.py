"""Landed serving-cost files (`landing/_costs/`, one per worker and interval, written by
`models.serving.costs`) into `serving_costs`.

The same exactly-once ingest as prediction logs (`warehouse.landing`): each file checked
alone first and set aside with its reason when it cannot be read, the good ones inserted in
one transaction and moved to `ingested/` after the commit; a sample id already stored (a
crash between the commit and the move) is not inserted twice.
"""

from __future__ import annotations

import duckdb

from warehouse.connection import connect
from warehouse.landing import Column, LandedIngest, OnReject, _ingest

COSTS = "costs"
COST_TABLES = ("training_costs", "serving_costs")

SERVING_COSTS_SQL = """
INSERT INTO serving_costs
SELECT sample_id, worker, dataset, model_version, interval_start, interval_end, predictions,
       requests, cpu_seconds, request_cpu_seconds, gb_hours, parse_filename(filename)
FROM read_parquet($files, filename = true, union_by_name = true) AS landed
WHERE NOT EXISTS (SELECT 1 FROM serving_costs s WHERE s.sample_id = landed.sample_id)
QUALIFY row_number() OVER (PARTITION BY sample_id ORDER BY interval_end) = 1
"""

COST_COLUMNS = {
    "sample_id": Column("text", True), "worker": Column("text", True),
    "dataset": Column("text", True), "model_version": Column("text", True),
    "interval_start": Column("timestamp", True), "interval_end": Column("timestamp", True),
    "predictions": Column("integer", True), "requests": Column("integer", True),
    "cpu_seconds": Column("number", True), "request_cpu_seconds": Column("number", True),
    "gb_hours": Column("number", True),
}


def has_cost_tables(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the warehouse has the cost tables (migration 7): a home not migrated since
    keeps working, without cost figures, until `overnight warehouse init`."""
    row = con.execute("SELECT count(*) FROM information_schema.tables"
                      " WHERE list_contains($names, table_name)",
                      {"names": list(COST_TABLES)}).fetchone()
    return bool(row and row[0] == len(COST_TABLES))


def ingest_serving_costs(on_reject: OnReject | None = None) -> LandedIngest:
    """Move landed serving-cost files into `serving_costs`; returns files and new rows.
    Without the table (a warehouse not migrated yet) the files wait, none is rejected."""
    with connect(read_only=True) as con:
        if not has_cost_tables(con):
            return LandedIngest(COSTS, 0, 0)
    return _ingest(COSTS, SERVING_COSTS_SQL, COST_COLUMNS, on_reject)
