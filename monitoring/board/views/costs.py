"""Costs: what every model version cost to train and costs to serve, against its quality."""

from __future__ import annotations

import streamlit as st

from monitoring.board import cost_charts, data, ui


def shown(value: float | None, form: str = ".4g") -> str:
    """A figure, or "none" when it is missing (NULL or NaN)."""
    return "none" if value is None or value != value else format(value, form)


def main() -> None:
    board = ui.start("Costs", "Quality against cost per model version: held-out macro F1, the "
                     "training run's cost, and serving cost per 1000 predictions, priced with "
                     "the policy's prices.")
    found = ui.load(data.costs, board.filters)
    if not found.available:
        st.info("This warehouse has no cost tables yet: `overnight warehouse init` adds them; "
                "costs are recorded from the next training run and served load on.")
        return
    if found.versions.empty:
        st.info("No model version in the chosen datasets yet.")
        return
    champions = found.versions[found.versions["aliases"].fillna("").str.contains("champion")]
    number = st.column_config.NumberColumn
    for row in champions.itertuples(index=False):
        columns = st.columns(4)
        columns[0].metric(f"Champion of {row.dataset}", row.model_version)
        columns[1].metric("Held-out macro F1", shown(row.f1_macro, ".3f"))
        columns[2].metric("Training cost", shown(row.training_cost))
        columns[3].metric("Cost per 1000 predictions", shown(row.cost_per_1000))
    priced = found.versions.dropna(subset=["f1_macro"])
    if priced[["training_cost", "cost_per_1000"]].notna().any().any():
        ui.chart(cost_charts.quality_cost_chart(priced), key="costs.quality")
    else:
        st.info("No cost recorded yet: training runs record theirs from now on, serving "
                "workers land theirs every interval and `overnight collect` stores them.")
    st.subheader("Model versions")
    ui.table(found.versions, **{c: number(c, format="%.4g") for c in (
        "training_cost", "cost_per_1000", "cpu_seconds_per_1000", "training_cpu_seconds",
        "training_wall_seconds", "training_peak_mb", "serving_cpu_seconds")})
    st.subheader("Serving")
    if found.serving.empty:
        st.caption("No serving cost in the chosen dates.")
    else:
        ui.chart(cost_charts.serving_cost_chart(found.serving), key="costs.serving")
    with st.expander("Training runs, task by task (start, each branch, join, total)"):
        ui.table(found.training)
    st.caption("Prices (monitoring/policies.yaml): " + "; ".join(
        f"{r.dataset}: {r.cpu_hour_price:g} per CPU-hour, {r.gb_hour_price:g} per GB-hour, "
        f"alert above +{r.max_cost_rise:.0%} per 1000 predictions after a promotion"
        for r in found.prices.itertuples(index=False)))


main()
