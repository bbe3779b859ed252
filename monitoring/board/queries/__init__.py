"""The board's questions to the warehouse, one module per page (plus `state` for the sidebar).

Every question the CLI also asks (champions, nights, decisions, alerts, shadow agreement,
drift trend, leaderboard, a prediction's lineage) is answered by the named report of
`warehouse.reports`, called through `sql.report` and narrowed to the sidebar's filters; only
the questions no report asks keep their SQL here. `monitoring.board.data` gathers them all
for the pages.
"""
