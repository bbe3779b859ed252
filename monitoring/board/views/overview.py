"""Overview: per dataset, the champion, last night's stages, open alerts; and freshness."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from monitoring.board import data, ui


def champion_metrics(row: pd.Series) -> None:
    columns = st.columns([2, 1, 1])
    columns[0].metric("Champion", row["model_version"])
    for column, key, label in ((columns[1], "accuracy", "Accuracy"),
                               (columns[2], "f1_macro", "Macro F1")):
        value = row[key]
        column.metric(label, "n/a" if pd.isna(value) else f"{value:.3f}",
                      help="On the held-out data of its training run.")
    trained, promoted = row["trained_at"], row["promoted_at"]
    st.caption(f"{row['algorithm'] or 'unknown algorithm'}, trained "
               f"{'?' if pd.isna(trained) else f'{trained:%Y-%m-%d %H:%M}'} UTC, champion since "
               f"{'?' if pd.isna(promoted) else f'{promoted:%Y-%m-%d %H:%M}'} UTC")


def last_night(runs: pd.DataFrame) -> None:
    if runs.empty:
        st.markdown("**Last night:** no run in the chosen dates.")
        return
    night = pd.Timestamp(runs["night_date"].iloc[0])
    stages = " · ".join(f"{ui.STATUS_ICONS.get(s, '')} {stage} {s}"
                        for stage, s in runs[["stage", "status"]].itertuples(index=False))
    st.markdown(f"**Last night {night:%Y-%m-%d}:** {stages}")
    for stage, error in runs.loc[runs["status"] == "failed", ["stage", "error"]].itertuples(
            index=False):
        st.error(f"{stage} failed: {error}")


def open_alerts(counts: pd.DataFrame) -> None:
    by_severity = dict(zip(counts["severity"], counts["n"], strict=True))
    parts = [f"{icon} {by_severity.get(s, 0)} {s}" for s, icon in ui.SEVERITY_ICONS.items()]
    st.markdown("**Open alerts:** " + " · ".join(parts))


def main() -> None:
    board = ui.start("Overview", "Did last night go well, which model serves each dataset, "
                     "and what needs attention.")
    found = ui.load(data.overview, board.filters)
    st.caption(data.freshness(board.state))
    totals = st.columns(4)
    totals[0].metric("Datasets", len(board.datasets))
    totals[1].metric("Last night", f"{board.state.last_night:%Y-%m-%d}"
                     if board.state.last_night else "none")
    alerts = found.alerts
    totals[2].metric("Open alerts", int(alerts["n"].sum()))
    totals[3].metric("Critical", int(alerts.loc[alerts["severity"] == "critical", "n"].sum()))
    for dataset in board.datasets:
        with st.container(border=True):
            st.subheader(dataset)
            champion = found.champions[found.champions["dataset"] == dataset]
            if champion.empty:
                st.info(f"{dataset} has no champion yet: the first night that trains one "
                        "promotes it.")
            else:
                champion_metrics(champion.iloc[0])
            last_night(found.last_nights[found.last_nights["dataset"] == dataset])
            open_alerts(alerts[alerts["dataset"] == dataset])


main()
