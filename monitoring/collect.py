"""Collect what the serving processes landed: prediction logs, feedback labels and alerts.

The nightly flow runs this first, so the night's monitoring sees yesterday's traffic; it can
also run on its own (`overnight collect`) as often as wanted: each landed file is taken once.

One bad file never stops the others: each is checked alone, and one that cannot be taken (a
truncated Parquet file, wrong columns, an alert with an unknown severity...) is moved to
`landing/_rejected/KIND/` with a `.reason.json` beside it and raises one warning alert
(`landing_rejected`), while every good file is still collected in the same run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monitoring.alerts import SEVERITIES, AlertError, raise_alert
from monitoring.drift.served_store import type_landed_predictions
from warehouse.landing import (
    Rejection,
    ingest_feedback,
    ingest_predictions,
    landed_files,
    landing_folder,
    reject_file,
)
from warehouse.serving_costs import ingest_serving_costs


def alert_rejection(rejection: Rejection) -> None:
    """The one alert of a rejected landed file (its id is the rejected file's name)."""
    dataset = None if rejection.kind in ("predictions", "feedback", "alerts",
                                         "costs") else rejection.kind
    raise_alert("landing_rejected",
                f"landed {rejection.kind} file {rejection.name} rejected: {rejection.reason} "
                f"(kept in {rejection.path})",
                severity="warning", dataset=dataset, details=rejection.as_dict(),
                dedupe_key=rejection.dedupe_key)


def _text(payload: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = payload.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key!r} must be a non-empty string")
    return value


def alert_payload(path: Path) -> dict[str, Any]:
    """A landed alert file's fields, checked; ValueError says what is wrong."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not a UTF-8 JSON file: {error}") from None
    if not isinstance(payload, dict):
        raise ValueError("not a JSON object")
    severity = payload.get("severity")
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}; severities are {', '.join(SEVERITIES)}")
    details = payload.get("details")
    if details is not None and not isinstance(details, dict):
        raise ValueError("'details' must be a JSON object")
    return {"kind": _text(payload, "kind"), "message": _text(payload, "message"),
            "severity": severity, "dataset": _text(payload, "dataset", optional=True),
            "details": details, "dedupe_key": _text(payload, "dedupe_key", optional=True)}


def ingest_landed_alerts() -> tuple[int, list[Rejection]]:
    """Store alerts raised by serving (e.g. a refused artifact); the dedupe key of each makes
    a repeated ingest harmless. Returns the alerts stored and the files rejected."""
    done = landing_folder("alerts") / "ingested"
    count, rejected = 0, []
    for path in landed_files("alerts", ".json"):
        try:
            fields = alert_payload(path)
            raise_alert(fields.pop("kind"), fields.pop("message"), **fields)
        except (ValueError, AlertError) as error:
            rejected.append(reject_file(path, "alerts", str(error), alert_rejection))
            continue
        done.mkdir(parents=True, exist_ok=True)
        path.replace(done / path.name)
        count += 1
    return count, rejected


def collect_serving_logs() -> dict[str, Any]:
    """Ingest every kind of landed serving file; returns files and rows per kind, and the
    files rejected (`rejected`: how many, `rejections`: where each went and why)."""
    from models.serving.wal import compact_orphans

    compact_orphans(landing_folder("predictions"))   # log segments of dead workers -> Parquet
    predictions = ingest_predictions(alert_rejection)
    typed = type_landed_predictions()       # served inputs, typed for drift (issue 21)
    feedback = ingest_feedback(alert_rejection)
    alerts, alert_rejections = ingest_landed_alerts()
    costs = ingest_serving_costs(alert_rejection)       # CPU per model version (issue 21)
    rejections = [*predictions.rejected, *feedback.rejected, *alert_rejections,
                  *costs.rejected]
    return {"prediction_files": predictions.files, "predictions": predictions.rows,
            "feedback_files": feedback.files, "feedback": feedback.rows, "alerts": alerts,
            "served_typed_rows": typed.rows,
            "cost_files": costs.files, "serving_costs": costs.rows,
            "rejected": len(rejections), "rejections": [r.as_dict() for r in rejections]}
