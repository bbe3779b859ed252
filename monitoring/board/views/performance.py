"""Performance: daily accuracy, macro F1 and per-class recall of the serving champion, with
the labelled rows behind each point and the champion switches marked."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from monitoring.board import charts, data, ui


def main() -> None:
    board = ui.start("Performance", "How the serving champion does on the predictions whose "
                     "labels have arrived, day by day.")
    dataset = ui.choose_dataset(board, key="performance.dataset")
    found = ui.load(data.performance, dataset, board.filters)
    if found.daily.empty:
        st.info(f"No labelled predictions of {dataset} in the chosen dates yet. Performance "
                "appears once a night has scored a labelled batch with the champion (from the "
                "second night on) or feedback has arrived for served predictions.")
    else:
        latest = found.daily.iloc[-1]
        columns = st.columns(4)
        columns[0].metric("Latest day", f"{pd.Timestamp(latest['day']):%Y-%m-%d}")
        columns[1].metric("Accuracy", f"{latest['accuracy']:.3f}")
        columns[2].metric("Macro F1", f"{latest['f1_macro']:.3f}")
        columns[3].metric("Labelled rows", int(latest["n_labelled"]))
        ui.chart(charts.performance_chart(found.daily, found.switches), key="performance.main")
        ui.chart(charts.recall_chart(found.recall, found.switches), key="performance.recall")
        recalls = pd.DataFrame(list(found.daily["recall_per_class"])).add_prefix("recall ")
        ui.table(pd.concat([found.daily.drop(columns="recall_per_class"), recalls], axis=1),
                 day=st.column_config.DateColumn("day"))
    st.subheader("Champion switches")
    if found.switches.empty:
        st.caption("No champion switch in the chosen dates.")
    else:
        ui.table(found.switches, night=st.column_config.DateColumn("night"))


main()
