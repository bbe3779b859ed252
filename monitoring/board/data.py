"""Everything the status board reads, as plain functions returning pandas frames.

Why a module of its own: the pages stay thin (they only lay out what these functions return),
every number the board shows is tested without Streamlit, and the pages (`ui.load` finds a
query here by its name) and the tests import one module. It defines nothing: each function
lives once, in `access` (the short read-only connection) or in the `queries` module of its
page, and the questions the CLI also asks are the named reports of `warehouse.reports`.

Every query function takes an open connection first (`champions(con, filters)`); the page
bundles (`overview`, `nights`, ...) run several on one connection; `read(fn, *args)` opens that
connection for the moment it needs and closes it.
"""

from __future__ import annotations

from models.registry.versions import ALIASES
from monitoring.board.access import (
    BUSY_MESSAGE,
    BUSY_WAIT_SECONDS,
    FIRST_RUN_COMMAND,
    SCHEMA_VERSION,
    BoardUnavailable,
    NoWarehouse,
    WarehouseBusy,
    first_run_message,
    is_free,
    read,
    reading,
    warehouse_file,
)
from monitoring.board.queries.ab import ABVerdicts, ab_verdicts
from monitoring.board.queries.alerts import alerts, filter_alerts
from monitoring.board.queries.costs import Costs, costs
from monitoring.board.queries.drift import (
    P_VALUE_METHODS,
    Drift,
    drift,
    drift_columns,
    drift_trend,
    of_source,
    relative_drift,
)
from monitoring.board.queries.explanation import (
    champion_version,
    prediction_record,
    recent_predictions,
)
from monitoring.board.queries.lineage import Lineage, lineage, lineage_dot, prediction_lineage
from monitoring.board.queries.models import (
    SIGNIFICANCE_LEVEL,
    Models,
    alias_history,
    aliases,
    inline_images,
    leaderboard,
    models,
    read_report,
    report_files,
    significance,
    training_runs,
    versions,
)
from monitoring.board.queries.nights import Nights, decisions, expand_triggers, night_runs, nights
from monitoring.board.queries.overview import (
    Overview,
    champions,
    last_nights,
    open_alert_counts,
    overview,
    stage_matrix,
)
from monitoring.board.queries.performance import (
    Performance,
    champion_switches,
    daily_performance,
    metrics_from_counts,
    performance,
    recall_long,
)
from monitoring.board.queries.predictions import (
    CONFIDENCE_BUCKETS,
    ROLES,
    Predictions,
    class_distribution,
    confidence_histogram,
    prediction_daily,
    predictions,
    role_counts,
    shadow_agreement,
)
from monitoring.board.queries.sql import Filters
from monitoring.board.queries.state import BoardState, board_state, freshness
from warehouse.nights import STAGES

__all__ = [
    "ALIASES", "BUSY_MESSAGE", "BUSY_WAIT_SECONDS", "CONFIDENCE_BUCKETS", "FIRST_RUN_COMMAND",
    "P_VALUE_METHODS", "ROLES", "SCHEMA_VERSION", "SIGNIFICANCE_LEVEL", "STAGES",
    "ABVerdicts", "BoardState", "BoardUnavailable", "Costs", "Drift", "Filters", "Lineage",
    "Models", "Nights",
    "NoWarehouse", "Overview", "Performance", "Predictions", "WarehouseBusy",
    "ab_verdicts", "alerts", "alias_history", "aliases", "board_state", "champion_switches",
    "champions",
    "class_distribution", "confidence_histogram", "costs", "daily_performance", "decisions",
    "drift",
    "drift_columns", "drift_trend", "expand_triggers", "filter_alerts", "first_run_message",
    "freshness", "inline_images", "is_free", "last_nights", "leaderboard", "lineage",
    "lineage_dot", "metrics_from_counts", "models", "night_runs", "nights",
    "of_source", "open_alert_counts", "overview", "performance", "prediction_daily",
    "prediction_lineage",
    "predictions", "read", "read_report", "reading", "recall_long", "relative_drift",
    "report_files", "role_counts", "shadow_agreement", "significance", "stage_matrix",
    "training_runs", "versions", "warehouse_file",
]
__all__ += ["champion_version", "prediction_record", "recent_predictions"]   # explanation page
