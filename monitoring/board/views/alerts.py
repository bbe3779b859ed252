"""Alerts: open and recent alerts, filtered by status, severity and kind."""

from __future__ import annotations

import streamlit as st

from monitoring.board import charts, data, ui

STATUSES = {"open": "open", "closed": "closed", "all": None}


def main() -> None:
    board = ui.start("Alerts", "Whatever crossed a threshold: failed steps, drift, performance "
                     "drops, refused challengers, quarantined batches.")
    columns = st.columns([1, 2, 2])
    status = columns[0].radio("Status", list(STATUSES), horizontal=True, key="alerts.status")
    found = ui.load(data.alerts, board.filters, STATUSES[status])
    severities = columns[1].multiselect("Severity", list(ui.SEVERITY_ICONS),
                                        key="alerts.severity", placeholder="all severities")
    kinds = columns[2].multiselect("Kind", sorted(found["kind"].unique()), key="alerts.kind",
                                   placeholder="all kinds")
    shown = data.filter_alerts(found, severities, kinds)
    counts = st.columns(len(ui.SEVERITY_ICONS))
    for column, (severity, icon) in zip(counts, ui.SEVERITY_ICONS.items(), strict=True):
        column.metric(f"{icon} {severity}", int((shown["severity"] == severity).sum()))
    if shown.empty:
        st.success(f"No {status if status != 'all' else ''} alert matches: nothing needs "
                   "attention here.")
        return
    ui.chart(charts.alerts_chart(shown), key="alerts.chart")
    ui.table(shown, created_at=st.column_config.DatetimeColumn("raised", format="YYYY-MM-DD HH:mm"),
             closed_at=st.column_config.DatetimeColumn("closed", format="YYYY-MM-DD HH:mm"),
             delivered=st.column_config.CheckboxColumn("sent"))
    st.caption("Close an alert with `overnight close-alert ALERT_ID` (the board is read-only).")


main()
