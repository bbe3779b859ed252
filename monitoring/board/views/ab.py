"""A/B tests: per dataset, whether each challenger in shadow or canary is better than its
champion on the labelled served traffic, how sure that is, and how many more labels would
settle it (`monitoring.ab_report`; the same verdicts as `overnight ab` and its report)."""

from __future__ import annotations

import streamlit as st

from monitoring.board import ab_charts, data, ui
from monitoring.board.queries.ab import ABVerdicts

SHADOW_COLUMNS = ("dataset", "champion", "challenger", "pairs", "agreement", "labelled",
                  "champion_accuracy", "challenger_accuracy", "champion_only",
                  "challenger_only", "p_value", "winner", "labels_needed")
CANARY_COLUMNS = ("dataset", "champion", "challenger", "champion_labelled",
                  "challenger_labelled", "champion_accuracy", "challenger_accuracy",
                  "difference", "ci_low", "ci_high", "p_value", "winner", "more_champion",
                  "more_challenger")
WINNER_ICONS = {"challenger": ":green[:material/trending_up:]",
                "champion": ":red[:material/trending_down:]",
                "undecided": ":gray[:material/hourglass_empty:]",
                "no labels": ":gray[:material/label_off:]"}


def verdict_lines(verdicts: ABVerdicts) -> None:
    for design, frame in (("shadow", verdicts.shadow), ("canary", verdicts.canary)):
        for row in frame.to_dict(orient="records"):
            st.markdown(f"{WINNER_ICONS.get(row['winner'], '')} **{row['dataset']}** "
                        f"({design}) {row['challenger']} vs {row['champion'] or '(none)'}: "
                        f"{row['verdict']}")


def main() -> None:
    board = ui.start("A/B tests", "Challenger against champion on the served traffic that "
                     "got labels: shadow pairs (McNemar) and canary arms (two-proportion "
                     "test, Newcombe interval), with the labels still needed to decide.")
    verdicts = ui.load(data.ab_verdicts, board.filters)
    if verdicts.empty:
        st.info("No challenger has served or shadowed any request in these datasets and "
                "dates. Give a dataset a challenger alias, turn shadow mode or a canary share "
                "on (`POST /v1/admin/traffic`), and send labels to `/v1/feedback`.")
        return
    shadow, canary = verdicts.shadow, verdicts.canary
    canary_labels = canary["champion_labelled"].sum() + canary["challenger_labelled"].sum()
    columns = st.columns(3)
    columns[0].metric("Shadow pairs", f"{int(shadow['pairs'].sum()):,}")
    columns[1].metric("Labelled shadow pairs", f"{int(shadow['labelled'].sum()):,}")
    columns[2].metric("Labelled canary answers", f"{int(canary_labels):,}")
    verdict_lines(verdicts)
    labelled = [f[f["champion_accuracy"].notna()] for f in (shadow, canary)]
    if any(not f.empty for f in labelled):
        ui.chart(ab_charts.accuracy_chart(*labelled), key="ab.accuracy")
    else:
        st.caption("No label has come back for these answers yet: send them to /v1/feedback.")
    number = st.column_config.NumberColumn
    share = {name: number(name, format="%.3f") for name in (
        "agreement", "champion_accuracy", "challenger_accuracy", "difference", "ci_low",
        "ci_high")}
    st.subheader("Shadow (same requests)")
    if shadow.empty:
        st.caption("Shadow mode is off, or no request reached it.")
    else:
        ui.table(shadow[list(SHADOW_COLUMNS)], p_value=number("p", format="%.3g"),
                 **{k: v for k, v in share.items() if k in SHADOW_COLUMNS})
    st.subheader("Canary (split requests)")
    if canary.empty:
        st.caption("No canary: the challenger answered no request.")
    else:
        if canary["difference"].notna().any():
            ui.chart(ab_charts.difference_chart(canary), key="ab.difference")
        ui.table(canary[list(CANARY_COLUMNS)], p_value=number("p", format="%.3g"),
                 **{k: v for k, v in share.items() if k in CANARY_COLUMNS})


main()
