"""Predictions: volume, predicted classes and confidence over time, the share flagged for
review, and shadow versus champion agreement when a shadow model runs."""

from __future__ import annotations

import math

import streamlit as st

from monitoring.board import charts, data, ui
from warehouse import get_settings


def main() -> None:
    board = ui.start("Predictions", "What the served models answered, how sure they were, and "
                     "how a shadow model compares.")
    counts = ui.load(data.role_counts, board.filters)
    if counts.empty:
        st.info("No predictions recorded for these datasets and dates yet. They appear once "
                "the serving API has answered requests and the nightly run has ingested its "
                f"prediction logs from {get_settings().landing_dir}; nightly batch scoring "
                "shows here too (role 'batch').")
        return
    present = list(counts["role"])
    default = ["served"] if "served" in present else present
    roles = st.multiselect("Roles", present, default=default, key="predictions.roles",
                           help="served: answered by the API; shadow: a challenger's answer "
                           "to the same request; batch: the nightly scoring of a batch.")
    found = ui.load(data.predictions, board.filters, tuple(roles or present))
    if "served" not in present:
        st.caption("No served predictions yet: showing the nightly batch scoring.")
    daily, agreement = found.daily, found.agreement
    columns = st.columns(4)
    columns[0].metric("Predictions", f"{found.total:,}")
    for column, label, value, shown in (
            (columns[1], "Flagged for review", found.review_share, "{:.1%}"),
            (columns[2], "Mean confidence", found.mean_confidence, "{:.3f}"),
            (columns[3], "Shadow agreement", found.agreement_rate, "{:.1%}")):
        column.metric(label, shown.format(value) if not math.isnan(value) else
                      "off" if column is columns[3] else "n/a")
    ui.chart(charts.volume_chart(daily), key="predictions.volume")
    ui.chart(charts.class_chart(found.classes), key="predictions.classes")
    if found.confidence.empty:
        st.caption("These predictions carry no confidence (batch scoring records classes only).")
    else:
        ui.chart(charts.confidence_chart(daily), key="predictions.confidence")
        ui.chart(charts.confidence_histogram_chart(found.confidence),
                 key="predictions.histogram")
        ui.chart(charts.review_chart(daily), key="predictions.review")
    st.subheader("Shadow versus champion")
    if agreement.empty:
        st.caption("Shadow mode is off: no shadow prediction shares a request with a served one.")
    else:
        ui.chart(charts.agreement_chart(agreement), key="predictions.agreement")
        ui.table(agreement, day=st.column_config.DateColumn("day"),
                 agreement=st.column_config.NumberColumn("agreement", format="%.3f"))
    with st.expander("Per day"):
        ui.table(daily, day=st.column_config.DateColumn("day"))


main()
