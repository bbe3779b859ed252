"""The board's entry point for `streamlit run` (see `monitoring.board.launch`).

It sets the page up, draws the sidebar filters (here, so they persist from page to page) and
hands over to the page the visitor chose. Each page is a file in `views/`.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from monitoring.board import ui

VIEWS = Path(__file__).with_name("views")
PAGES = (
    ("overview.py", "Overview", ":material/dashboard:"),
    ("nights.py", "Nights", ":material/bedtime:"),
    ("performance.py", "Performance", ":material/monitoring:"),
    ("drift.py", "Drift", ":material/waves:"),
    ("models.py", "Models", ":material/model_training:"),
    ("predictions.py", "Predictions", ":material/batch_prediction:"),
    ("ab.py", "A/B tests", ":material/compare_arrows:"),
    ("explanation.py", "Explanation", ":material/psychology:"),
    ("costs.py", "Costs", ":material/payments:"),
    ("alerts.py", "Alerts", ":material/notifications:"),
)

st.set_page_config(page_title="overnight board", page_icon="🌙", layout="wide")
navigation = st.navigation([st.Page(VIEWS / name, title=title, icon=icon, default=index == 0)
                            for index, (name, title, icon) in enumerate(PAGES)])
ui.sidebar()
navigation.run()
