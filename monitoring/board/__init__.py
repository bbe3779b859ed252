"""The status board: a Streamlit app that shows the platform's state at a glance.

It reads the warehouse (read-only, one short connection per page) and the reports folder, and
never blocks the nightly loop. The logic lives in plain modules that are tested without
Streamlit: `data` (every query, returning pandas frames: `access` opens the warehouse,
`queries/` holds one module per page and asks `warehouse.reports` whatever the CLI asks too),
`charts` (plotly figures) and `launch` (the `streamlit run` command); `app.py` and `views/`
are the thin Streamlit layer on top.
"""
