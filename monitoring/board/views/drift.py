"""Drift: share of drifted columns over time, per-column scores as a heat map, and the
night's Evidently report inside the page (downloadable); of the night's batch, or of the
inputs served since the night before (the source switch)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from monitoring.board import charts, data, ui

SOURCES = {"batch": "the night's batch", "served": "served traffic"}


def main() -> None:
    board = ui.start("Drift", "What changed in the incoming data, compared with what the "
                     "champion was trained on.")
    found = ui.load(data.drift, board.filters)
    source = st.radio("Source", list(SOURCES), format_func=lambda s: SOURCES[s], horizontal=True,
                      key="drift.source")
    if source == "served" and not data.of_source(found, "served").trend.empty:
        st.caption("Inputs served (champion, canary and batch scoring) since the night "
                   "before, judged out of core against the same reference; the row "
                   "prediction:training_labels compares the served classes with the training "
                   "labels and is not counted in the share.")
    elif source == "served":
        st.info("No served-traffic report in the chosen datasets and dates: a night writes "
                "one when its dataset served requests since the night before.")
        return
    found = data.of_source(found, str(source))
    if found.trend.empty:
        st.info("No drift report in the chosen datasets and dates: a night writes one once its "
                "dataset has a champion to compare with (from the second night on).")
        return
    ui.chart(charts.share_drifted_chart(found.trend), key="drift.share")
    dataset = ui.choose_dataset(board, key="drift.dataset")
    reports = found.trend[found.trend["dataset"] == dataset]
    if reports.empty:
        st.info(f"No drift report of {dataset} in the chosen dates.")
        return
    ui.chart(charts.drift_heatmap(found.columns[found.columns["dataset"] == dataset]),
             key="drift.heatmap")
    nights = sorted(pd.to_datetime(reports["night_date"]).dt.date.unique(), reverse=True)
    night = st.selectbox("Report of the night", nights, key="drift.night",
                         format_func=lambda d: d.isoformat())
    report = reports[pd.to_datetime(reports["night_date"]).dt.date == night].iloc[-1]
    columns = st.columns(4)
    columns[0].metric("Drifted columns", f"{int(report['n_drifted'])} of "
                      f"{int(report['n_columns'])}")
    columns[1].metric("Share drifted", f"{report['share_drifted']:.0%}")
    columns[2].metric("Dataset drift", "yes" if report["dataset_drift"] else "no")
    columns[3].metric("Against", report["model_version"])
    drifted = found.columns[(found.columns["dataset"] == dataset)
                            & (pd.to_datetime(found.columns["night_date"]).dt.date == night)]
    with st.expander("Column verdicts of this night"):
        ui.table(drifted.drop(columns=["dataset", "night_date", "source"]),
                 drifted=st.column_config.CheckboxColumn("drifted"),
                 relative=st.column_config.NumberColumn("score / threshold", format="%.2f"))
    if report["html_path"]:
        ui.html_report(Path(report["html_path"]), title="Evidently report", height=900,
                       key="drift.report")
    else:
        st.info("This night's drift report has no HTML file.")


main()
