"""The alerts page's question: the alerts of the date range in any status or one (the `alerts`
report), and the page's own severity and kind filters over them."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from monitoring.board.queries.sql import Filters, report


def filter_alerts(frame: pd.DataFrame, severities: Sequence[str] = (),
                  kinds: Sequence[str] = ()) -> pd.DataFrame:
    """The alerts of the chosen severities and kinds (none chosen = all)."""
    keep = pd.Series(True, index=frame.index)
    if severities:
        keep &= frame["severity"].isin(list(severities))
    if kinds:
        keep &= frame["kind"].isin(list(kinds))
    return frame[keep]


def alerts(con: duckdb.DuckDBPyConnection, filters: Filters, status: str | None = None
           ) -> pd.DataFrame:
    """Alerts of the date range (by creation day), newest first; status None = any."""
    return report(con, "alerts", filters, day="created_at", keep_global=True,
                  status=status or "all")
