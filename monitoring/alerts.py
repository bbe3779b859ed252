"""Alerts: every threshold crossing of a night, stored first, then sent to an optional webhook.

An alert is written to the `alerts` table in its own transaction before anything else, so it
is kept whatever happens next. When a webhook URL is configured (argument, or the
`webhook_url` setting, env OVERNIGHT_WEBHOOK_URL), the alert is then posted to it as JSON with
a short timeout and marked delivered on success; a webhook that is down or answers with an
error leaves the alert undelivered (`redeliver_pending` tries again later) and never raises.
A `dedupe_key` makes the alert id deterministic, so re-running a night does not duplicate it.

This module records and delivers alerts; it must not decide what crosses a threshold (the
policy, the gate and the nightly loop do) nor retry in a loop.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.request
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from warehouse import connect, get_settings, transaction
from warehouse.errors import OvernightError

if TYPE_CHECKING:
    from models.data.batches import StoredBatch
    from monitoring.policy import Decision, Trigger

SEVERITIES = ("info", "warning", "critical")
WEBHOOK_TIMEOUT_SECONDS = 3.0
# Alert kind and severity of each retraining trigger that fires.
TRIGGER_ALERTS = {
    "missing_champion": ("missing_champion", "info"),
    "accuracy_drop": ("performance", "critical"),
    "f1_drop": ("performance", "critical"),
    "data_drift": ("drift", "warning"),
    "model_age": ("model_age", "info"),
    "new_labelled_rows": ("new_labels", "info"),
}

log = logging.getLogger(__name__)


class AlertError(OvernightError):
    """An alert request that cannot be right (unknown severity, unknown alert id)."""


@dataclass(frozen=True)
class Alert:
    alert_id: str
    kind: str
    severity: str
    message: str
    dataset: str | None
    details: dict[str, Any] | None
    created_at: datetime
    status: str = "open"
    delivered: bool = False

    def payload(self) -> dict[str, Any]:
        """The JSON body posted to the webhook."""
        return {"alert_id": self.alert_id, "dataset": self.dataset, "kind": self.kind,
                "severity": self.severity, "message": self.message, "details": self.details,
                "created_at": self.created_at.isoformat()}


_COLUMNS = "alert_id, kind, severity, message, dataset, details, created_at, status, delivered"


def _row_to_alert(row: tuple[Any, ...]) -> Alert:
    details = json.loads(row[5]) if row[5] is not None else None
    return Alert(row[0], row[1], row[2], row[3], row[4], details, row[6], row[7], bool(row[8]))


def _check_severity(severity: str) -> None:
    if severity not in SEVERITIES:
        raise AlertError(f"unknown severity {severity!r}; severities are {', '.join(SEVERITIES)}")


def configured_webhook() -> str | None:
    """The webhook URL of the settings, if any."""
    return getattr(get_settings(), "webhook_url", None) or None


def post_alert(alert: Alert, webhook_url: str) -> bool:
    """POST the alert as JSON; True on a 2xx answer, False (logged) on any failure."""
    body = json.dumps(alert.payload(), default=str).encode("utf-8")
    try:
        request = urllib.request.Request(webhook_url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            return 200 <= response.status < 300
    except (OSError, ValueError, http.client.HTTPException) as error:
        log.warning("alert %s not delivered to %s: %s", alert.alert_id, webhook_url, error)
        return False


def _mark_delivered(alert_ids: list[str]) -> None:
    if alert_ids:
        with transaction() as con:
            con.execute("UPDATE alerts SET delivered = TRUE WHERE list_contains(?, alert_id)",
                        [alert_ids])


def raise_alert(
    kind: str,
    message: str,
    *,
    severity: str = "warning",
    dataset: str | None = None,
    details: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    webhook_url: str | None = None,
) -> Alert:
    """Store an alert, then post it to the webhook (if any) and mark it delivered.

    With a `dedupe_key` (e.g. f"drift:{dataset}:{night}") the alert id is the key: an alert
    already stored under it is returned as it is (posted again only if open and undelivered).
    """
    _check_severity(severity)
    alert_id = dedupe_key or uuid.uuid4().hex
    now = datetime.now(UTC).replace(tzinfo=None)
    with transaction() as con:
        con.execute(
            "INSERT INTO alerts (alert_id, dataset, kind, severity, message, details, status,"
            " delivered, created_at) VALUES (?, ?, ?, ?, ?, ?, 'open', FALSE, ?)"
            " ON CONFLICT (alert_id) DO NOTHING",
            [alert_id, dataset, kind, severity, message,
             None if details is None else json.dumps(details, default=str), now])
        row = con.execute(f"SELECT {_COLUMNS} FROM alerts WHERE alert_id = ?",
                          [alert_id]).fetchone()
    assert row is not None  # just written, or already there
    alert = _row_to_alert(row)
    url = webhook_url or configured_webhook()
    if alert.delivered or alert.status == "closed" or url is None or not post_alert(alert, url):
        return alert
    _mark_delivered([alert.alert_id])
    return replace(alert, delivered=True)


def open_alerts(dataset: str | None = None, severity: str | None = None) -> pd.DataFrame:
    """Open alerts, newest first, optionally of one dataset and one severity."""
    if severity is not None:
        _check_severity(severity)
    with connect(read_only=True) as con:
        return con.execute(
            "SELECT alert_id, created_at, dataset, kind, severity, message, details, delivered"
            " FROM alerts WHERE status = 'open'"
            " AND ($d::VARCHAR IS NULL OR dataset = $d::VARCHAR)"
            " AND ($s::VARCHAR IS NULL OR severity = $s::VARCHAR)"
            " ORDER BY created_at DESC, alert_id", {"d": dataset, "s": severity}).df()


def close_alert(alert_id: str) -> bool:
    """Close an alert; False when it was already closed, an error when there is none."""
    with transaction() as con:
        row = con.execute("SELECT status FROM alerts WHERE alert_id = ?", [alert_id]).fetchone()
        if row is None:
            raise AlertError(f"no alert {alert_id!r}; `overnight alerts` lists the open ones")
        if row[0] == "closed":
            return False
        con.execute("UPDATE alerts SET status = 'closed', closed_at = ? WHERE alert_id = ?",
                    [datetime.now(UTC).replace(tzinfo=None), alert_id])
    return True


def redeliver_pending(webhook_url: str | None = None) -> int:
    """Post the open alerts not delivered yet; returns how many got through."""
    url = webhook_url or configured_webhook()
    if url is None:
        return 0
    with connect(read_only=True) as con:
        rows = con.execute(f"SELECT {_COLUMNS} FROM alerts WHERE status = 'open'"
                           " AND NOT delivered ORDER BY created_at, alert_id").fetchall()
    delivered = [a.alert_id for a in map(_row_to_alert, rows) if post_alert(a, url)]
    _mark_delivered(delivered)
    return len(delivered)


def alerts_for_decision(decision: Decision, webhook_url: str | None = None) -> list[Alert]:
    """One alert per kind of fired trigger (accuracy and F1 drops make one 'performance').

    Ids are f"{kind}:{dataset}:{night}", so a re-run night adds nothing and a drift alert
    already raised under "drift:{dataset}:{night}" by the monitor stage is not repeated.
    """
    night = decision.night_date.isoformat()
    by_kind: dict[str, list[Trigger]] = {}
    for trigger in decision.fired:
        by_kind.setdefault(TRIGGER_ALERTS[trigger.name][0], []).append(trigger)
    return [
        raise_alert(
            kind, f"{decision.dataset} {night}: {'; '.join(t.note for t in triggers)}",
            severity=TRIGGER_ALERTS[triggers[0].name][1], dataset=decision.dataset,
            details={"triggers": [asdict(t) for t in triggers],
                     "decision_id": decision.decision_id, "retrain": decision.retrain,
                     "reason": decision.reason},
            dedupe_key=f"{kind}:{decision.dataset}:{night}", webhook_url=webhook_url)
        for kind, triggers in by_kind.items()
    ]


def alert_quarantine(batch: StoredBatch, webhook_url: str | None = None) -> Alert | None:
    """A warning for a quarantined batch (None for an accepted one)."""
    if batch.status != "quarantined":
        return None
    return raise_alert(
        "quarantine", f"batch {batch.batch_id} of {batch.dataset} quarantined: {batch.reason}",
        dataset=batch.dataset,
        details={"batch_id": batch.batch_id, "batch_date": batch.batch_date.isoformat(),
                 "n_rows": batch.n_rows, "reason": batch.reason},
        dedupe_key=f"quarantine:{batch.batch_id}", webhook_url=webhook_url)


def alert_failed_gate(dataset: str, challenger_version: str, reasons: list[str],
                      webhook_url: str | None = None) -> Alert:
    """A warning for a challenger refused by the validation gate."""
    return raise_alert(
        "gate", f"challenger {challenger_version} of {dataset} refused: {'; '.join(reasons)}",
        dataset=dataset, details={"challenger_version": challenger_version, "reasons": reasons},
        dedupe_key=f"gate:{dataset}:{challenger_version}", webhook_url=webhook_url)


def alert_failed_step(dataset: str, night_date: date, stage: str, error: str,
                      webhook_url: str | None = None) -> Alert:
    """A critical alert for a nightly step that failed."""
    return raise_alert(
        "nightly_step", f"{dataset} {night_date.isoformat()}: step {stage} failed: {error}",
        severity="critical", dataset=dataset,
        details={"night_date": night_date.isoformat(), "stage": stage, "error": error},
        dedupe_key=f"step:{dataset}:{night_date.isoformat()}:{stage}", webhook_url=webhook_url)
