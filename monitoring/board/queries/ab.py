"""The A/B page's question: is each challenger better than its champion on served traffic?
The verdicts of `monitoring.ab_report` (the named reports `ab_shadow` and `ab_canary` turned
into McNemar and two-proportion verdicts with each dataset's policy), kept within the
sidebar's datasets and dates (a pair counts the traffic of the chosen days only)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from monitoring.ab_report import canary_verdicts, shadow_verdicts
from monitoring.board.queries.sql import Filters, within


@dataclass(frozen=True)
class ABVerdicts:
    shadow: pd.DataFrame
    canary: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.shadow.empty and self.canary.empty


def ab_verdicts(con: duckdb.DuckDBPyConnection, filters: Filters) -> ABVerdicts:
    return ABVerdicts(within(shadow_verdicts(con, None, filters.start, filters.end), filters),
                      within(canary_verdicts(con, None, filters.start, filters.end), filters))
