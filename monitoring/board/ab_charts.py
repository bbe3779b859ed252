"""The A/B page's figures (beside `charts`, which holds the other pages'): labelled accuracy
of champion and challenger per pair, and a canary's difference with its interval."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from monitoring.board.charts import _layout

CHAMPION_COLOUR, CHALLENGER_COLOUR = "#1e88e5", "#f9a825"


def pair_labels(frame: pd.DataFrame, design: str) -> pd.Series:
    return (frame["dataset"] + " · " + frame["challenger"] + " vs "
            + frame["champion"].fillna("(none)") + f" ({design})")


def accuracy_chart(shadow: pd.DataFrame, canary: pd.DataFrame) -> go.Figure:
    """Bars of each pair's labelled accuracy, champion beside challenger."""
    frames = [f.assign(pair=pair_labels(f, design)) for f, design in
              ((shadow, "shadow"), (canary, "canary")) if not f.empty]
    both = pd.concat(frames, ignore_index=True)
    fig = go.Figure()
    for column, name, colour in (("champion_accuracy", "champion", CHAMPION_COLOUR),
                                 ("challenger_accuracy", "challenger", CHALLENGER_COLOUR)):
        fig.add_bar(x=both["pair"], y=both[column], name=name, marker_color=colour,
                    hovertext=both["verdict"])
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="accuracy on labelled answers", range=[0, 1.05], tickformat=".0%")
    return _layout(fig, "Labelled accuracy: champion versus challenger")


def difference_chart(canary: pd.DataFrame) -> go.Figure:
    """Each canary's accuracy difference (challenger - champion) with Newcombe's interval."""
    shown = canary[canary["difference"].notna()]
    fig = go.Figure()
    fig.add_scatter(x=shown["difference"], y=pair_labels(shown, "canary"), mode="markers",
                    marker={"size": 10, "color": CHALLENGER_COLOUR}, name="difference",
                    error_x={"type": "data", "symmetric": False,
                             "array": shown["ci_high"] - shown["difference"],
                             "arrayminus": shown["difference"] - shown["ci_low"]})
    fig.add_vline(x=0, line_dash="dash", line_color="#9e9e9e")
    fig.update_xaxes(title="challenger - champion accuracy (interval at 1 - alpha)",
                     tickformat="+.0%")
    return _layout(fig, "Canary: difference and its interval", height=260)
