"""Landing-zone ingest: prediction logs and feedback labels written as Parquet by the serving
processes (which never open the warehouse) are moved into the warehouse.

Exactly once: a file's rows are inserted in one transaction, skipping prediction ids the
warehouse already has, and the file is moved to `ingested/` only after the commit. A crash
in between leaves the file in place; the next run inserts nothing from it and moves it. Files
still being written carry a hidden temporary name and are never read. When the warehouse is
held by another writer the connection helper waits and retries; if the lock outlasts its
patience the files simply stay for the next run.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from warehouse.connection import transaction
from warehouse.settings import get_settings

FILES_PER_TRANSACTION = 200

PREDICTIONS_SQL = """
INSERT INTO predictions
SELECT prediction_id, dataset, model_version, alias, role, request_id, predicted_at,
       predicted_class, predicted_index, confidence, needs_review, probabilities::JSON,
       inputs::JSON, latency_ms, coalesce(source_file, parse_filename(filename))
FROM read_parquet($files, filename = true) AS landed
WHERE NOT EXISTS (SELECT 1 FROM predictions p WHERE p.prediction_id = landed.prediction_id)
QUALIFY row_number() OVER (PARTITION BY prediction_id ORDER BY predicted_at) = 1
"""

FEEDBACK_SQL = """
INSERT INTO feedback
SELECT prediction_id, label, received_at, source
FROM read_parquet($files) AS landed
QUALIFY row_number() OVER (PARTITION BY prediction_id ORDER BY received_at DESC) = 1
ON CONFLICT (prediction_id) DO UPDATE SET label = excluded.label,
    received_at = excluded.received_at, source = excluded.source
"""


@dataclass(frozen=True)
class LandedIngest:
    kind: str
    files: int
    rows: int


def landing_folder(kind: str) -> Path:
    """Where serving lands files of one kind (`predictions`, `feedback`, `alerts`).

    The leading underscore keeps them apart from users' dataset folders (`landing/DATASET/`):
    a dataset name starts with a letter.
    """
    return get_settings().landing_dir / f"_{kind}"


def landed_files(kind: str) -> list[Path]:
    """Complete landing files of one kind, oldest name first."""
    folder = landing_folder(kind)
    if not folder.exists():
        return []
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def _ingest(kind: str, sql: str) -> LandedIngest:
    files = landed_files(kind)
    done = landing_folder(kind) / "ingested"
    rows = 0
    for start in range(0, len(files), FILES_PER_TRANSACTION):
        chunk = files[start:start + FILES_PER_TRANSACTION]
        with transaction() as con:
            changed = con.execute(sql, {"files": [str(p) for p in chunk]}).fetchone()
        rows += int(changed[0]) if changed else 0
        done.mkdir(parents=True, exist_ok=True)
        for path in chunk:
            shutil.move(str(path), done / path.name)
    return LandedIngest(kind, len(files), rows)


def ingest_predictions() -> LandedIngest:
    """Move landed prediction logs into `predictions`; returns the files and new rows."""
    return _ingest("predictions", PREDICTIONS_SQL)


def ingest_feedback() -> LandedIngest:
    """Move landed labels into `feedback` (a later label for the same prediction wins)."""
    return _ingest("feedback", FEEDBACK_SQL)
