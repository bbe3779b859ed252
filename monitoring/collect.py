"""Collect what the serving processes landed: prediction logs, feedback labels and alerts.

The nightly flow runs this first, so the night's monitoring sees yesterday's traffic; it can
also run on its own (`overnight collect`) as often as wanted: each landed file is taken once.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

from monitoring.alerts import raise_alert
from warehouse.landing import ingest_feedback, ingest_predictions, landing_folder


def ingest_landed_alerts() -> int:
    """Store alerts raised by serving (e.g. a refused artifact); the dedupe key of each makes
    a repeated ingest harmless."""
    folder = landing_folder("alerts")
    if not folder.exists():
        return 0
    done = folder / "ingested"
    count = 0
    for path in sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")):
        payload = json.loads(path.read_text())
        raise_alert(payload["kind"], payload["message"], severity=payload["severity"],
                    dataset=payload.get("dataset"), details=payload.get("details"),
                    dedupe_key=payload.get("dedupe_key"))
        done.mkdir(exist_ok=True)
        shutil.move(str(path), done / path.name)
        count += 1
    return count


def collect_serving_logs() -> dict[str, Any]:
    """Ingest every kind of landed serving file; returns files and rows per kind."""
    predictions = ingest_predictions()
    feedback = ingest_feedback()
    alerts = ingest_landed_alerts()
    return {"prediction_files": predictions.files, "predictions": predictions.rows,
            "feedback_files": feedback.files, "feedback": feedback.rows, "alerts": alerts}
