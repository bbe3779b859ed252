"""Models: leaderboards of training runs, champion / challenger / previous with their history,
the model report of a version, and a read-only view of its lineage."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from monitoring.board import data, ui


def run_label(runs: pd.DataFrame, run_id: str) -> str:
    row = runs[runs["run_id"] == run_id].iloc[0]
    finished = row["finished_at"]
    when = "" if pd.isna(finished) else f" · {finished:%Y-%m-%d %H:%M}"
    return f"{run_id}{when} · winner {row['winner_version'] or 'none'}"


def leaderboard(runs: pd.DataFrame) -> None:
    st.subheader("Leaderboard")
    if runs.empty:
        st.info("No training run yet.")
        return
    run_id = st.selectbox("Training run", list(runs["run_id"]), key="models.run",
                          format_func=lambda r: run_label(runs, r))
    number = st.column_config.NumberColumn
    ui.table(ui.load(data.leaderboard, run_id),
             fit_seconds=number("fit seconds", format="%.2f"),
             p_value_vs_best=number("p vs best", format="%.2g",
                                    help="McNemar test against the best candidate."),
             **{c: number(c, format="%.3f") for c in ("score", "accuracy", "balanced_accuracy",
                                                      "f1_macro", "cv_mean", "cv_std")})


def lineage(version: str) -> None:
    st.subheader("Lineage")
    found = ui.load(data.lineage, version)
    st.caption("Predictions → model → training run → the batches it learned from (read-only).")
    st.graphviz_chart(data.lineage_dot(found))
    ui.table(found.batches, batch_date=st.column_config.DateColumn("batch date"))
    if not found.example.empty:
        st.caption(f"The latest prediction of {version}, followed back through `v_lineage`:")
        ui.table(found.example)


def main() -> None:
    board = ui.start("Models", "Which model serves, which candidates it beat, how it changed, "
                     "and where it came from.")
    dataset = ui.choose_dataset(board, key="models.dataset")
    found = ui.load(data.models, dataset)
    st.subheader("Champion, challenger, previous")
    if found.aliases.empty:
        st.info(f"{dataset} has no model alias yet.")
    else:
        ui.table(found.aliases)
    with st.expander("Alias history (promotions, rollbacks, new challengers)",
                     expanded=len(found.history) <= 6):
        ui.table(found.history)
    leaderboard(found.runs)
    if found.versions.empty:
        return
    st.subheader("Model versions")
    ui.table(found.versions.drop(columns=["card", "artifact_path"]))
    champion = found.aliases.loc[found.aliases["alias"] == "champion", "model_version"]
    names = list(found.versions["model_version"])
    version = st.selectbox("Version", names, key="models.version",
                           index=names.index(champion.iloc[0]) if len(champion) else 0)
    row = found.versions[found.versions["model_version"] == version].iloc[0]
    reports = data.report_files(json.loads(row["card"]), row["artifact_path"])
    st.subheader(f"Report of {version}")
    if not reports:
        st.info(f"No report file found for {version}.")
    else:
        title = st.radio("Report", list(reports), horizontal=True, key="models.report")
        ui.html_report(reports[title], title=title, height=900, key="models.report_file")
    lineage(version)


main()
