"""The costs page's plotly figures (beside `charts`, which holds the other pages' ones):
quality against cost per model version, and serving cost per day.

Each function expects a frame with at least one row to draw; the page shows an empty state
otherwise.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

QUALITY = "f1_macro"
DAY_MS = 86_400_000                 # one day on a plotly date axis
PANELS = (("training_cost", "training cost (money, whole run)"),
          ("cost_per_1000", "serving cost per 1000 predictions (money)"))


def quality_cost_chart(versions: pd.DataFrame) -> go.Figure:
    """Held-out macro F1 against training cost and against serving cost per 1000 predictions:
    one point per model version (the champion drawn larger), one colour per dataset."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, shared_yaxes=True,
                        subplot_titles=[title for _, title in PANELS])
    colours = px.colors.qualitative.Plotly
    datasets = sorted(versions["dataset"].unique())
    for col, (column, _title) in enumerate(PANELS, start=1):
        for index, dataset in enumerate(datasets):
            rows = versions[(versions["dataset"] == dataset) & versions[column].notna()
                            & versions[QUALITY].notna()]
            if rows.empty:
                continue
            champion = rows["aliases"].fillna("").str.contains("champion")
            fig.add_trace(go.Scatter(
                x=rows[column], y=rows[QUALITY], mode="markers+text", name=dataset,
                legendgroup=dataset, showlegend=col == 1,
                text=rows["model_version"], textposition="top center",
                marker={"size": [16 if c else 9 for c in champion],
                        "color": colours[index % len(colours)],
                        "line": {"width": [2 if c else 0 for c in champion],
                                 "color": "#212121"}},
                customdata=rows[["algorithm", "aliases"]].fillna(""),
                hovertemplate="%{text} (%{customdata[0]}) %{customdata[1]}<br>macro F1 "
                              "%{y:.3f}<br>cost %{x:.4g}<extra></extra>"), row=1, col=col)
        fig.update_xaxes(title="money", row=1, col=col)
    fig.update_yaxes(title="held-out macro F1", row=1, col=1)
    fig.update_layout(title="Quality against cost per model version", height=440,
                      margin={"l": 10, "r": 10, "t": 90, "b": 10},
                      legend={"title": "dataset"})
    return fig


def serving_cost_chart(daily: pd.DataFrame) -> go.Figure:
    """CPU seconds per 1000 predictions per day and model version."""
    frame = daily.assign(day=pd.to_datetime(daily["day"]))
    fig = px.line(frame, x="day", y="cpu_seconds_per_1000", color="model_version",
                  markers=True, hover_data=["dataset", "predictions", "workers"])
    fig.update_yaxes(title="CPU seconds per 1000 predictions", rangemode="tozero")
    span = (frame["day"].max() - frame["day"].min()).days
    fig.update_xaxes(title="day", type="date", tickformat="%Y-%m-%d",
                     dtick=DAY_MS if span <= 14 else None)
    fig.update_layout(title="Serving CPU per 1000 predictions", height=360,
                      margin={"l": 10, "r": 10, "t": 60, "b": 10},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0,
                              "title": None})
    return fig
