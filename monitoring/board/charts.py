"""The board's plotly figures, built from the frames of `monitoring.board.data`.

Kept apart from the pages so each figure is a plain function of its frame, tested without a
browser, and the pages only place them. Every function expects a non-empty frame; the pages
show an empty state instead of calling them with nothing.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from monitoring.drift.verdict import DRIFT_SHARE
from warehouse.nights import STAGES

STATUS_COLOURS = {"ok": "#2e7d32", "failed": "#c62828", "skipped": "#9e9e9e",
                  "running": "#f9a825"}
SEVERITY_COLOURS = {"critical": "#c62828", "warning": "#f9a825", "info": "#1e88e5"}
SWITCH_COLOUR = "#6a1b9a"
# The heat map's scale: 0 = no sign of drift, 1 = at the threshold, 3 and above = strong drift.
RELATIVE_MAX = 3.0
PLOTLY_CONFIG = {"displaylogo": False}
DAY_MS = 86_400_000                 # one day on a plotly date axis


def _layout(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    fig.update_layout(title=title, height=height, margin={"l": 10, "r": 10, "t": 60, "b": 10},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0,
                              "title": None})
    return fig


def _dates(values: pd.Series) -> pd.Series:
    """Dates as timestamps, so plotly draws a date axis whatever DuckDB returned."""
    return pd.to_datetime(values)


def _day_axis(fig: go.Figure, days: pd.Series, title: str | None = None) -> go.Figure:
    """A date axis labelled by day; one tick a day when the range is short (plotly would
    otherwise label hours between two nights)."""
    span = (days.max() - days.min()).days if len(days) else 0
    fig.update_xaxes(title=title, type="date", tickformat="%Y-%m-%d",
                     dtick=DAY_MS if span <= 14 else None)
    return fig


def _stacked(fig: go.Figure) -> go.Figure:
    """Stack the bars of each x: plotly express puts each colour in its own offset group,
    which draws them side by side even in stack mode."""
    fig.update_layout(barmode="stack")
    return fig.update_traces(offsetgroup=None, alignmentgroup=None)


def mark_switches(fig: go.Figure, switches: pd.DataFrame) -> go.Figure:
    """A dashed vertical line per champion change, labelled with the new champion."""
    for row in switches.itertuples(index=False):
        when = pd.Timestamp(row.night)
        fig.add_shape(type="line", x0=when, x1=when, y0=0, y1=1, yref="paper",
                      line={"color": SWITCH_COLOUR, "dash": "dash", "width": 2})
        fig.add_annotation(x=when, y=1, yref="paper", yanchor="top", xanchor="left",
                           xshift=4, showarrow=False, bgcolor="rgba(255,255,255,0.8)",
                           text=f"champion: {row.model_version or 'none'}",
                           font={"color": SWITCH_COLOUR, "size": 11})
    return fig


# -------------------------------------------------------------------------------- nights


def stage_timeline(runs: pd.DataFrame) -> go.Figure:
    """Each night's stages per dataset as coloured cells: what ran, what failed, what skipped."""
    frame = runs.assign(night=_dates(runs["night_date"]),
                        row=runs["dataset"] + " · " + runs["stage"],
                        seconds=runs["duration_seconds"].round(1))
    order = [f"{d} · {s}" for d in sorted(frame["dataset"].unique())
             for s in [*STAGES, *sorted(set(frame["stage"]) - set(STAGES))]
             if f"{d} · {s}" in set(frame["row"])]
    fig = px.scatter(frame, x="night", y="row", color="status",
                     color_discrete_map=STATUS_COLOURS, category_orders={"row": order},
                     hover_data={"seconds": True, "detail": True, "error": True, "row": False})
    fig.update_traces(marker={"symbol": "square", "size": 16})
    fig.update_yaxes(title=None)
    return _layout(_day_axis(fig, frame["night"], "night"), "Stage outcomes per night",
                   height=max(300, 22 * len(order) + 120))


def stage_durations(runs: pd.DataFrame) -> go.Figure:
    """How long each night took per dataset, stacked by stage."""
    frame = runs.assign(night=_dates(runs["night_date"]))
    fig = px.bar(frame, x="night", y="duration_seconds", color="stage", facet_col="dataset",
                 category_orders={"stage": list(STAGES)}, hover_data=["status", "detail"])
    fig.update_yaxes(title="seconds")
    return _layout(_day_axis(_stacked(fig), frame["night"]), "Stage durations (seconds)")


# --------------------------------------------------------------------------- performance


def performance_chart(daily: pd.DataFrame, switches: pd.DataFrame) -> go.Figure:
    """Accuracy and macro F1 per day (lines), labelled rows behind each point (bars)."""
    day = _dates(daily["day"])
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=day, y=daily["n_labelled"], name="labelled rows",
                         marker_color="#cfd8dc", opacity=0.6, width=0.6 * DAY_MS),
                  secondary_y=True)
    for column, name in (("accuracy", "accuracy"), ("f1_macro", "macro F1")):
        fig.add_trace(go.Scatter(
            x=day, y=daily[column], name=name, mode="lines+markers",
            customdata=daily[["model_version", "n_labelled"]],
            hovertemplate=f"{name} %{{y:.3f}}<br>%{{customdata[0]}}, "
                          "%{customdata[1]} labelled rows<extra></extra>"), secondary_y=False)
    fig.update_yaxes(title="score", range=[0, 1.05], secondary_y=False)
    fig.update_yaxes(title="labelled rows", secondary_y=True, showgrid=False)
    _day_axis(fig, pd.concat([day, _dates(switches["night"])]), "day of prediction")
    return _layout(mark_switches(fig, switches), "Accuracy and macro F1 of the champion")


def recall_chart(recall: pd.DataFrame, switches: pd.DataFrame) -> go.Figure:
    frame = recall.assign(day=_dates(recall["day"]))
    fig = px.line(frame, x="day", y="recall", color="class", markers=True,
                  hover_data=["model_version", "n_labelled"])
    fig.update_yaxes(range=[0, 1.05])
    _day_axis(fig, pd.concat([frame["day"], _dates(switches["night"])]), "day of prediction")
    return _layout(mark_switches(fig, switches), "Recall per class")


# --------------------------------------------------------------------------------- drift


def share_drifted_chart(trend: pd.DataFrame) -> go.Figure:
    """Share of drifted columns per night and dataset, with the dataset-drift line."""
    frame = trend.assign(night=_dates(trend["night_date"]))
    fig = px.line(frame, x="night", y="share_drifted", color="dataset", markers=True,
                  hover_data=["n_drifted", "n_columns", "dataset_drift", "model_version"])
    fig.add_hline(y=DRIFT_SHARE, line_dash="dot", line_color=SEVERITY_COLOURS["critical"],
                  annotation_text="dataset drift", annotation_position="top left")
    fig.update_yaxes(title="share of drifted columns", range=[0, 1.05], tickformat=".0%")
    return _layout(_day_axis(fig, frame["night"], "night"), "Share of drifted columns")


def drift_heatmap(columns: pd.DataFrame) -> go.Figure:
    """Columns by nights, coloured by drift score relative to each test's threshold."""
    frame = columns.assign(night=pd.to_datetime(columns["night_date"]).dt.strftime("%Y-%m-%d"))
    nights = sorted(frame["night"].unique())
    names = sorted(frame["column_name"].unique())

    def grid(values: str) -> pd.DataFrame:
        return frame.pivot_table(index="column_name", columns="night", values=values,
                                 aggfunc="first").reindex(index=names, columns=nights)

    relative = grid("relative").clip(upper=RELATIVE_MAX)
    drifted = grid("drifted")
    detail = frame.assign(hover=frame["method"].fillna("?") + " score "
                          + frame["score"].map("{:.3g}".format) + ", threshold "
                          + frame["threshold"].map("{:.3g}".format)).pipe(
        lambda f: f.pivot_table(index="column_name", columns="night", values="hover",
                                aggfunc="first").reindex(index=names, columns=nights))
    fig = go.Figure(go.Heatmap(
        z=relative.to_numpy(), x=nights, y=names, zmin=0, zmax=RELATIVE_MAX,
        colorscale=[[0, "#e8f5e9"], [1 / RELATIVE_MAX, "#fff59d"], [1, "#c62828"]],
        text=drifted.map(lambda v: "drift" if v is True else "").to_numpy(),
        texttemplate="%{text}", customdata=detail.to_numpy(),
        hovertemplate="%{y} on %{x}<br>%{customdata}<br>relative %{z:.2f}<extra></extra>",
        colorbar={"title": "score / threshold"}))
    fig.update_xaxes(type="category", title="night")
    return _layout(fig, "Drift per column (1 = threshold)",
                   height=max(300, 28 * len(names) + 140))


# --------------------------------------------------------------------------- predictions


def volume_chart(daily: pd.DataFrame) -> go.Figure:
    frame = daily.assign(day=_dates(daily["day"]), series=daily["dataset"] + " · " + daily["role"])
    fig = px.bar(frame, x="day", y="predictions", color="series")
    return _layout(_day_axis(_stacked(fig), frame["day"]), "Predictions per day")


def class_chart(classes: pd.DataFrame) -> go.Figure:
    frame = classes.assign(day=_dates(classes["day"]))
    datasets = frame["dataset"].nunique()
    fig = px.bar(frame, x="day", y="share", color="predicted_class", facet_row="dataset",
                 hover_data=["n"])
    fig.update_yaxes(tickformat=".0%", title=None)
    return _layout(_day_axis(_stacked(fig), frame["day"]), "Predicted classes (share of the day)",
                   height=220 * datasets + 140)


def confidence_chart(daily: pd.DataFrame) -> go.Figure:
    """Median confidence per day with the 10th-90th percentile band, per dataset and role."""
    fig = go.Figure()
    frame = daily.dropna(subset=["confidence_median"])
    for (dataset, role), part in frame.groupby(["dataset", "role"], sort=True):
        day, name = _dates(part["day"]), f"{dataset} · {role}"
        fig.add_trace(go.Scatter(x=day, y=part["confidence_p90"], mode="lines", line={"width": 0},
                                 showlegend=False, hoverinfo="skip", legendgroup=name))
        fig.add_trace(go.Scatter(x=day, y=part["confidence_p10"], mode="lines", line={"width": 0},
                                 fill="tonexty", opacity=0.2, showlegend=False,
                                 hoverinfo="skip", legendgroup=name))
        fig.add_trace(go.Scatter(x=day, y=part["confidence_median"], mode="lines+markers",
                                 name=name, legendgroup=name))
    fig.update_yaxes(title="confidence", range=[0, 1.05])
    return _layout(_day_axis(fig, _dates(frame["day"])),
                   "Confidence: median and 10th-90th percentile")


def confidence_histogram_chart(histogram: pd.DataFrame) -> go.Figure:
    fig = px.bar(histogram, x="bucket", y="n", color="dataset", barmode="group")
    fig.update_xaxes(title="confidence (bucket start)", tickformat=".1f", dtick=0.1)
    return _layout(fig, "Confidence distribution")


def review_chart(daily: pd.DataFrame) -> go.Figure:
    frame = daily.dropna(subset=["review_share"]).assign(day=lambda f: _dates(f["day"]))
    fig = px.line(frame, x="day", y="review_share", color="dataset", markers=True,
                  hover_data=["role", "needs_review", "predictions"])
    fig.update_yaxes(title="share flagged for review", range=[0, 1.05], tickformat=".0%")
    return _layout(_day_axis(fig, frame["day"]), "Share of predictions flagged for review")


def agreement_chart(agreement: pd.DataFrame) -> go.Figure:
    pair = agreement["shadow_version"] + " vs " + agreement["served_version"]
    frame = agreement.assign(day=_dates(agreement["day"]), pair=pair)
    fig = px.line(frame, x="day", y="agreement", color="pair", markers=True,
                  hover_data=["dataset", "pairs"])
    fig.update_yaxes(title="same class as the champion", range=[0, 1.05], tickformat=".0%")
    return _layout(_day_axis(fig, frame["day"]), "Shadow versus champion agreement")


# -------------------------------------------------------------------------------- alerts


def alerts_chart(alerts: pd.DataFrame) -> go.Figure:
    frame = alerts.assign(day=pd.to_datetime(alerts["created_at"]).dt.normalize())
    counts = frame.groupby(["day", "severity"]).size().rename("alerts").reset_index()
    fig = px.bar(counts, x="day", y="alerts", color="severity",
                 color_discrete_map=SEVERITY_COLOURS,
                 category_orders={"severity": list(SEVERITY_COLOURS)})
    return _layout(_day_axis(_stacked(fig), counts["day"], "raised on"), "Alerts per day",
                   height=300)
