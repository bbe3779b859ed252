"""Nights: each night's stages (outcome, duration) and the retraining decision with every
trigger's value against its threshold."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from monitoring.board import charts, data, ui


def stage_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per night and dataset: each stage's status, total seconds, the first error."""
    wide = data.stage_matrix(runs)
    totals = runs.groupby(["dataset", "night_date"])["duration_seconds"].sum().rename("seconds")
    errors = runs.dropna(subset=["error"]).groupby(["dataset", "night_date"])["error"].first()
    wide = wide.join(totals, on=["dataset", "night_date"]).join(errors, on=["dataset",
                                                                            "night_date"])
    wide["error"] = wide["error"].fillna("")
    return wide.sort_values(["night_date", "dataset"], ascending=[False, True])


def main() -> None:
    board = ui.start("Nights", "Every nightly run: each stage's outcome and duration, and the "
                     "retraining decision with the evidence behind it.")
    found = ui.load(data.nights, board.filters)
    if found.runs.empty:
        st.info("No nightly run in the chosen datasets and dates.")
        return
    ui.chart(charts.stage_timeline(found.runs), key="nights.timeline")
    st.subheader("Stages per night")
    ui.table(stage_table(found.runs),
             night_date=st.column_config.DateColumn("night"),
             seconds=st.column_config.NumberColumn("seconds", format="%.1f"))
    ui.chart(charts.stage_durations(found.runs), key="nights.durations")

    st.subheader("Retraining decisions")
    if found.decisions.empty:
        st.info("No retraining decision in the chosen dates (the decide stage did not run).")
        return
    shown = found.decisions.assign(decision=found.decisions["retrain"].map(
        {True: "retrain", False: "keep"}))
    ui.table(shown[["night_date", "dataset", "decision", "reason", "model_version"]],
             night_date=st.column_config.DateColumn("night"),
             model_version=st.column_config.TextColumn("champion then"))
    nights = sorted(pd.to_datetime(found.decisions["night_date"]).dt.date.unique(),
                    reverse=True)
    night = st.selectbox("Triggers of the night", nights, key="nights.night",
                         format_func=lambda d: d.isoformat())
    triggers = found.triggers
    triggers = triggers[pd.to_datetime(triggers["night_date"]).dt.date == night]
    st.caption("Each trigger's value tonight against its threshold; a fired trigger asks for a "
               "retrain (the cool-down can still hold it back: see the reason above).")
    ui.table(triggers.drop(columns="night_date"),
             fired=st.column_config.CheckboxColumn("fired"),
             threshold=st.column_config.NumberColumn("threshold", format="%.4g"))


main()
