"""Explanation: one prediction looked up by its id (its inputs, class, confidence, review flag
and SHAP explanation, recomputed from the logged inputs with the version that answered it),
and the champion's global SHAP importance. `?prediction=<id>` in the address opens one."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from monitoring.board import data, ui
from monitoring.board.queries.explanation import MAX_ID_LENGTH

TOP = 12


@st.cache_data(ttl=600, max_entries=64, show_spinner="Computing the SHAP explanation...")
def _explanation(record_json: str) -> dict[str, Any]:
    from monitoring.explanations import explain_logged

    return explain_logged(json.loads(record_json))


@st.cache_data(ttl=3600, max_entries=16, show_spinner="Computing the champion's importance...")
def _importance(model_version: str) -> list[dict[str, Any]]:
    from monitoring.explanations import global_importance

    return global_importance(model_version)


def _bars(labels: list[str], values: list[float], title: str, x_title: str) -> go.Figure:
    colours = ["#c62828" if v > 0 else "#1e88e5" for v in values]
    figure = go.Figure(go.Bar(x=values[::-1], y=labels[::-1], orientation="h",
                              marker_color=colours[::-1]))
    figure.update_layout(title=title, height=max(260, 28 * len(labels) + 90),
                         margin={"l": 10, "r": 10, "t": 60, "b": 10}, xaxis_title=x_title)
    return figure


def _contribution_rows(explanation: dict[str, Any]) -> pd.DataFrame:
    if "contributions" in explanation:
        return pd.DataFrame([{"feature": c["feature"], "value": str(c["value"]),
                              "contribution": c["contribution"]}
                             for c in explanation["contributions"]])
    words = [*explanation.get("toward_predicted", []),
             *explanation.get("against_predicted", [])]
    return pd.DataFrame([{"feature": f"{w['word']} ({w['column']})", "value": "word",
                          "contribution": w["contribution"]} for w in words])


def show_explanation(record: dict[str, Any]) -> None:
    try:
        explanation = _explanation(json.dumps(record, default=str, sort_keys=True))
    except Exception as error:        # a version that cannot be loaded or explained: say so
        st.error(f"This prediction cannot be explained: {error}")
        return
    if explanation.get("review_reason"):
        st.warning(f"Needs review: {explanation['review_reason']}", icon=":material/flag:")
    st.subheader("Why this class")
    st.caption(f"SHAP values ({explanation['method']}) of the class "
               f"{explanation['predicted_class']!s}: the model's output "
               f"({explanation['output']}) starts at the base value "
               f"{explanation['base_value']:.4g} and each feature moves it, to "
               f"{explanation['output_value']:.4g}. Red pushes toward the class, blue away.")
    rows = _contribution_rows(explanation)
    if rows.empty:
        st.caption("Nothing in this record moved the prediction.")
        return
    shown = rows.reindex(rows["contribution"].abs().sort_values(ascending=False).index)[:TOP]
    ui.chart(_bars(list(shown["feature"]), list(shown["contribution"]),
                   f"What pushed {explanation['predicted_class']}", "SHAP value"),
             key="explanation.local")
    ui.table(rows, contribution=st.column_config.NumberColumn("contribution", format="%.4f"))
    if record["dataset"] == "medical":
        from models.reports.clinician import clinician_report

        page = clinician_report(record, explanation)
        st.download_button("Clinician's report (HTML)", page,
                           file_name=f"prediction-{record['prediction_id'][:40]}.html",
                           mime="text/html", on_click="ignore", icon=":material/download:",
                           key="explanation.clinician")


def show_importance(dataset: str) -> None:
    st.subheader(f"Champion's global importance ({dataset})")
    champion = ui.load(data.champion_version, dataset)
    if champion is None:
        st.caption(f"{dataset} has no champion now.")
        return
    try:
        importance = _importance(champion)
    except Exception as error:
        st.error(f"The importance of {champion} cannot be computed: {error}")
        return
    if not importance:
        st.caption("No rows to measure importance on.")
        return
    top = importance[:TOP]
    st.caption(f"Mean absolute SHAP value of {champion} over its training sample, averaged "
               "over classes: how far each feature moves its predictions.")
    ui.chart(_bars([str(r["feature"]) for r in top], [float(r["importance"]) for r in top],
                   f"Global importance of {champion}", "mean |SHAP value|"),
             key="explanation.global")


def main() -> None:
    board = ui.start("Explanation", "Look up one prediction by its id: what it was asked, "
                     "what it answered, how sure it was, and why (SHAP).")
    typed = st.text_input("Prediction id", value=st.query_params.get("prediction", ""),
                          max_chars=MAX_ID_LENGTH, key="explanation.id",
                          help="The prediction_id of an API answer or of a scored file.")
    prediction_id = typed.strip()
    if not prediction_id:
        st.info("Type or paste a prediction id. The latest predictions:")
        recent = ui.load(data.recent_predictions, board.filters)
        if recent.empty:
            st.caption("No predictions recorded for these datasets and dates yet.")
        else:
            ui.table(recent, confidence=st.column_config.NumberColumn(format="%.3f"))
        return
    record = ui.load(data.prediction_record, prediction_id)
    if record is None:
        st.warning("Unknown prediction id: no prediction with this id is in the warehouse "
                   "(predictions reach it when their logs are collected).",
                   icon=":material/search_off:")
        st.code(prediction_id, language=None)
        return
    st.query_params["prediction"] = prediction_id
    columns = st.columns(4)
    columns[0].metric("Class", str(record["predicted_class"]))
    confidence = record["confidence"]
    columns[1].metric("Confidence", "n/a" if pd.isna(confidence) else f"{confidence:.3f}")
    columns[2].metric("Needs review", "yes" if record["needs_review"] else "no")
    columns[3].metric("Model", str(record["model_version"]))
    st.caption(f"{record['dataset']} · {record['role']} · {record['predicted_at']} · "
               f"request {record['request_id']}")
    left, right = st.columns(2)
    with left:
        st.subheader("Inputs")
        inputs = record.get("inputs") or {}
        ui.table(pd.DataFrame({"feature": list(inputs),
                               "value": [str(v) for v in inputs.values()]}))
    with right:
        st.subheader("Probabilities")
        probabilities = record.get("probabilities")
        if isinstance(probabilities, dict):
            ui.table(pd.DataFrame({"class": list(probabilities),
                                   "probability": list(probabilities.values())}),
                     probability=st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                                 format="%.3f"))
        elif isinstance(probabilities, list):
            ui.table(pd.DataFrame({"probability": probabilities}))
    show_explanation(record)
    show_importance(str(record["dataset"]))


main()
