"""Named reports: the questions people ask the warehouse most, as parameterised SQL.

Parameters are always bound by DuckDB (`$name` placeholders), never pasted into the SQL text,
so a report parameter cannot change what the query does. An optional parameter left out is
bound as NULL and the report's `($p IS NULL OR ...)` guard ignores it.

`run_query` is `overnight query`: one statement of a user's SQL, accepted only when it is a
read (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, or EXPLAIN of one of those), and meant for the
locked-down connection of `warehouse.connection.connect_sandbox`. The type check refuses the
rest with one line before anything runs; the sandbox's settings are the second wall (a file
read inside a SELECT, e.g. `read_csv` or `FROM 'file.csv'`, is refused by DuckDB itself).
No named report reads the landing Parquet files (every view is over warehouse tables), so
every report runs in the sandbox too.

The status board (`monitoring.board`) asks these same questions through `run_report`, so a
figure on the board and the CLI's report come from one query; the board narrows the rows to
its sidebar's datasets and dates, and keeps its own SQL only for questions no report asks.

Shadow agreement pairs a served prediction with the shadow one on dataset, request id and the
record's inputs. The dataset belongs in the key: a request id is the client's `X-Request-ID`
when it sends a valid one, so two requests to two datasets may share it, and two datasets of
the same spec have records with identical inputs; without the dataset, a served answer of one
dataset would be compared with the shadow answer of another. (Model version names do carry
their dataset, but the pairs are not joined on them: the served and shadow versions differ.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from warehouse.connection import WarehouseError
from warehouse.migrations import TABLES, current_version


@dataclass(frozen=True)
class Report:
    name: str
    description: str
    sql: str
    params: tuple[str, ...] = field(default=())


_DATASET = "($dataset::VARCHAR IS NULL OR dataset = $dataset::VARCHAR)"
# Training metrics of a champion, out of its version's metrics JSON (constant SQL names).
_CHAMPION_METRICS = ("accuracy", "f1_macro", "balanced_accuracy")

# A/B counts of served traffic (monitoring/ab_verdict.py turns them into verdicts). Shadow: a
# served answer and the shadow answer of the same dataset, request and record, paired one to
# one (row_number: a request that repeats a record pairs each copy once, never crosswise);
# the label is the one sent for the served answer's id. Canary: the challenger arm is what
# the challenger answered; the champion arm what the champion answered between the
# challenger's first and last answer, so that both arms saw the same period's traffic.
_AB_PERIOD = ("($start::DATE IS NULL OR {t}::DATE >= $start::DATE)"
              " AND ($end::DATE IS NULL OR {t}::DATE <= $end::DATE)")
_AB_SHADOW = (
    "WITH shadow AS (SELECT *, row_number() OVER (PARTITION BY dataset, request_id,"
    " inputs::VARCHAR ORDER BY prediction_id) AS k FROM predictions"
    " WHERE role = 'shadow' AND ($dataset::VARCHAR IS NULL OR dataset = $dataset::VARCHAR)),"
    # only the served answers of requests that were shadowed reach the window and the casts
    " served AS (SELECT *, row_number() OVER (PARTITION BY dataset, request_id,"
    " inputs::VARCHAR ORDER BY prediction_id) AS k FROM predictions p WHERE role = 'served'"
    " AND ($dataset::VARCHAR IS NULL OR dataset = $dataset::VARCHAR) AND "
    + _AB_PERIOD.format(t="predicted_at") +
    " AND EXISTS (SELECT 1 FROM shadow h WHERE h.dataset = p.dataset"
    " AND h.request_id = p.request_id)),"
    " pairs AS (SELECT s.dataset, s.model_version AS champion, h.model_version AS challenger,"
    " s.predicted_at, s.predicted_class = f.label AS champion_right,"
    " h.predicted_class = f.label AS challenger_right,"
    " s.predicted_class = h.predicted_class AS agree, f.label"
    " FROM served s JOIN shadow h ON h.dataset = s.dataset AND h.request_id = s.request_id"
    " AND h.inputs::VARCHAR = s.inputs::VARCHAR AND h.k = s.k"
    " LEFT JOIN feedback f ON f.prediction_id = s.prediction_id)"
    " SELECT dataset, champion, challenger, min(predicted_at) AS first_pair,"
    " max(predicted_at) AS last_pair, count(*) AS pairs,"
    " count(*) FILTER (WHERE agree) AS agreeing, count(label) AS labelled,"
    " count(label) FILTER (WHERE champion_right AND challenger_right) AS both_right,"
    " count(label) FILTER (WHERE champion_right AND NOT challenger_right) AS champion_only,"
    " count(label) FILTER (WHERE challenger_right AND NOT champion_right) AS challenger_only,"
    " count(label) FILTER (WHERE NOT champion_right AND NOT challenger_right) AS both_wrong"
    " FROM pairs GROUP BY ALL ORDER BY dataset, first_pair, champion, challenger")
_AB_CANARY = (
    "WITH served AS (SELECT p.*, f.label FROM predictions p LEFT JOIN feedback f"
    " USING (prediction_id) WHERE p.role = 'served'"
    " AND ($dataset::VARCHAR IS NULL OR p.dataset = $dataset::VARCHAR) AND "
    + _AB_PERIOD.format(t="p.predicted_at") + "),"
    " canary AS (SELECT dataset, model_version AS challenger, min(predicted_at) AS first,"
    " max(predicted_at) AS last, count(*) AS challenger_answers,"
    " count(label) AS challenger_labelled,"
    " count(label) FILTER (WHERE predicted_class = label) AS challenger_correct"
    " FROM served WHERE alias = 'challenger' GROUP BY ALL),"
    " arm AS (SELECT c.dataset, c.challenger, s.model_version AS champion,"
    " count(*) AS champion_answers, count(s.label) AS champion_labelled,"
    " count(s.label) FILTER (WHERE s.predicted_class = s.label) AS champion_correct"
    " FROM canary c JOIN served s ON s.dataset = c.dataset AND s.alias = 'champion'"
    " AND s.predicted_at BETWEEN c.first AND c.last GROUP BY ALL)"
    " SELECT c.dataset, a.champion, c.challenger, c.first, c.last,"
    " coalesce(a.champion_answers, 0) AS champion_answers,"
    " coalesce(a.champion_labelled, 0) AS champion_labelled,"
    " coalesce(a.champion_correct, 0) AS champion_correct, c.challenger_answers,"
    " c.challenger_labelled, c.challenger_correct"
    " FROM canary c LEFT JOIN arm a USING (dataset, challenger)"
    " ORDER BY c.dataset, c.first, a.champion, c.challenger")
# Quality against cost per model version (issue 21): the held-out figures of the version's
# card and its run's cross-validation mean, the training run's `total` cost row, and what its
# serving workers measured. Money needs prices: the board and the nightly alert bind the
# policy's (`monitoring.costs`); on the command line pass them, e.g.
# `overnight report model_costs -p cpu_hour_price=0.04 -p gb_hour_price=0.005`.
_MODEL_COSTS = """
WITH training AS (
    SELECT model_version, cpu_seconds AS training_cpu_seconds,
           wall_seconds AS training_wall_seconds, peak_rss_mb AS training_peak_mb,
           gb_hours AS training_gb_hours
    FROM training_costs WHERE step = 'total' AND model_version IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY model_version ORDER BY recorded_at DESC) = 1),
serving AS (
    SELECT model_version, sum(predictions) AS predictions,
           sum(cpu_seconds) AS serving_cpu_seconds, sum(gb_hours) AS serving_gb_hours,
           count(DISTINCT worker) AS workers
    FROM serving_costs GROUP BY model_version),
named AS (
    SELECT model_version, string_agg(alias, ', ' ORDER BY alias) AS aliases
    FROM model_aliases GROUP BY model_version)
SELECT m.dataset, m.model_version, m.algorithm, m.trained_at, n.aliases,
       TRY_CAST(m.metrics ->> '$.f1_macro' AS DOUBLE) AS f1_macro,
       TRY_CAST(m.metrics ->> '$.accuracy' AS DOUBLE) AS accuracy,
       c.cv_mean,
       t.training_cpu_seconds, t.training_wall_seconds, t.training_peak_mb,
       t.training_gb_hours,
       s.predictions, s.workers, s.serving_cpu_seconds, s.serving_gb_hours,
       1000 * s.serving_cpu_seconds / nullif(s.predictions, 0) AS cpu_seconds_per_1000,
       t.training_cpu_seconds / 3600 * $cpu_hour_price::DOUBLE
           + t.training_gb_hours * $gb_hour_price::DOUBLE AS training_cost,
       1000 * (s.serving_cpu_seconds / 3600 * $cpu_hour_price::DOUBLE
               + s.serving_gb_hours * $gb_hour_price::DOUBLE)
           / nullif(s.predictions, 0) AS cost_per_1000
FROM model_versions m
LEFT JOIN training t USING (model_version)
LEFT JOIN serving s USING (model_version)
LEFT JOIN named n USING (model_version)
LEFT JOIN candidate_results c ON c.run_id = m.run_id AND c.algorithm = m.algorithm
WHERE ($dataset::VARCHAR IS NULL OR m.dataset = $dataset::VARCHAR)
ORDER BY m.dataset, m.version
"""

REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        Report("batches", "Batches by date with their status and quarantine reason.",
               "SELECT batch_id, dataset, batch_date, source, scenario, n_rows, n_labelled, status,"
               " quarantine_reason FROM batches WHERE " + _DATASET +
               " ORDER BY batch_date DESC, dataset LIMIT coalesce($limit::INTEGER, 100)",
               ("dataset", "limit")),
        Report("quarantine", "Quarantined batches and why they were refused.",
               "SELECT * FROM v_quarantine WHERE " + _DATASET, ("dataset",)),
        Report("quality", "Quality checks of one batch, or of the latest batches.",
               "SELECT batch_id, dataset, check_name, passed, blocking, observed, threshold, detail"
               " FROM quality_checks WHERE " + _DATASET +
               " AND ($batch::VARCHAR IS NULL OR batch_id = $batch::VARCHAR)"
               " ORDER BY checked_at DESC, batch_id, check_name"
               " LIMIT coalesce($limit::INTEGER, 200)",
               ("dataset", "batch", "limit")),
        Report("leaderboard", "Candidate results of training runs, best first.",
               "SELECT * FROM v_leaderboard WHERE " + _DATASET +
               " AND ($run::VARCHAR IS NULL OR run_id = $run::VARCHAR)"
               " ORDER BY trained_at DESC NULLS LAST, dataset, run_id, rank NULLS LAST,"
               " algorithm",
               ("dataset", "run")),
        Report("champions", "The model serving each dataset now.",
               "SELECT a.dataset, a.model_version, m.algorithm, m.trained_at, a.updated_at, " +
               ", ".join(f"TRY_CAST(m.metrics ->> '$.{name}' AS DOUBLE) AS {name}"
                         for name in _CHAMPION_METRICS) +
               " FROM model_aliases a LEFT JOIN model_versions m USING (model_version)"
               " WHERE a.alias = 'champion' AND ($dataset::VARCHAR IS NULL"
               " OR a.dataset = $dataset::VARCHAR) ORDER BY a.dataset",
               ("dataset",)),
        Report("champion_history", "Every champion switch (promotion, rollback) with its reason.",
               "SELECT * FROM v_champion_history WHERE " + _DATASET, ("dataset",)),
        Report("served_models", "Served predictions per day and model: volume, confidence, "
               "review share, and accuracy where labels came back (canary vs champion).",
               "SELECT p.dataset, p.predicted_at::DATE AS day, p.model_version, p.alias, p.role,"
               " count(*) AS predictions, avg(p.confidence) AS mean_confidence,"
               " avg(p.needs_review::INTEGER) AS review_share, count(f.label) AS labelled,"
               " avg((f.label = p.predicted_class)::INTEGER) AS accuracy"
               " FROM predictions p LEFT JOIN feedback f USING (prediction_id)"
               " WHERE ($dataset::VARCHAR IS NULL OR p.dataset = $dataset::VARCHAR)"
               " GROUP BY ALL ORDER BY p.dataset, day, p.role, p.model_version",
               ("dataset",)),
        Report("shadow_agreement", "How often the shadow challenger agrees with the answer "
               "served for the same request and record, per day.",
               "WITH served AS (SELECT * FROM predictions WHERE role = 'served'),"
               " shadow AS (SELECT * FROM predictions WHERE role = 'shadow')"
               " SELECT s.dataset, s.predicted_at::DATE AS day, s.model_version AS served_by,"
               " h.model_version AS shadow, count(*) AS pairs,"
               " avg((s.predicted_class = h.predicted_class)::INTEGER) AS agreement"
               " FROM served s JOIN shadow h ON h.dataset = s.dataset"
               " AND h.request_id = s.request_id AND h.inputs::VARCHAR = s.inputs::VARCHAR"
               " WHERE ($dataset::VARCHAR IS NULL OR s.dataset = $dataset::VARCHAR)"
               " GROUP BY ALL ORDER BY s.dataset, day, served_by, shadow",
               ("dataset",)),
        Report("ab_shadow", "Shadow A/B counts per dataset and champion / challenger pair: "
               "pairs, agreement and who was right on the labelled ones (McNemar's input).",
               _AB_SHADOW, ("dataset", "start", "end")),
        Report("ab_canary", "Canary A/B counts per dataset and champion / challenger pair: "
               "each arm's labelled answers and correct ones, over the canary's own period.",
               _AB_CANARY, ("dataset", "start", "end")),
        Report("drift_trend", "Share of drifted columns per night.",
               "SELECT * FROM v_drift_trend WHERE " + _DATASET +
               " ORDER BY dataset, night_date", ("dataset",)),
        Report("daily_accuracy", "Accuracy of served predictions per day, over labelled ones.",
               "SELECT * FROM v_daily_accuracy WHERE " + _DATASET, ("dataset",)),
        Report("lineage", "From a prediction to its model, training run and training batches.",
               "SELECT * FROM v_lineage WHERE prediction_id = $prediction::VARCHAR",
               ("prediction",)),
        Report("decisions", "Retraining decisions and why.",
               "SELECT night_date, dataset, retrain, reason, model_version, triggers"
               " FROM retraining_decisions WHERE " + _DATASET +
               " ORDER BY night_date DESC, dataset", ("dataset",)),
        Report("rollbacks", "The automatic-rollback watch of each night: the champion's "
               "labelled accuracy against the previous champion's, the test, and the verdict.",
               "SELECT night_date, dataset, rollback, rule, champion_version, previous_version,"
               " n_labelled, accuracy, previous_n_labelled, previous_accuracy, accuracy_drop,"
               " margin, p_value, cooldown_held, reason FROM rollback_checks WHERE " + _DATASET +
               " ORDER BY night_date DESC, dataset", ("dataset",)),
        Report("alerts", "Alerts, open ones unless a status is given (all: any status).",
               "SELECT created_at, severity, dataset, kind, message, status, delivered,"
               " closed_at, alert_id, details FROM alerts WHERE " + _DATASET +
               " AND ($status::VARCHAR = 'all' OR status = coalesce($status::VARCHAR, 'open'))"
               " ORDER BY created_at DESC, alert_id", ("dataset", "status")),
        Report("model_costs", "Quality against cost per model version: held-out F1 and "
               "accuracy, training cost (CPU, wall, memory), serving CPU and money per 1000 "
               "predictions (pass cpu_hour_price and gb_hour_price for money).",
               _MODEL_COSTS, ("dataset", "cpu_hour_price", "gb_hour_price")),
        Report("nights", "Nightly runs: each stage's outcome and duration.",
               "SELECT night_date, dataset, stage, status, started_at, finished_at,"
               " duration_seconds, detail, error FROM nightly_runs WHERE " + _DATASET +
               " ORDER BY night_date DESC, dataset, started_at", ("dataset",)),
    )
}


class UnknownReportError(WarehouseError):
    pass


# Every table of ours is named by this pattern (datasets' names are restricted the same way);
# a table someone made by hand with another name is not counted rather than quoted into SQL.
_OUR_TABLE = re.compile(r"^[a-z][a-z0-9_]{0,127}$")


class QueryRefusedError(WarehouseError):
    """A query the read-only sandbox does not run (the message says what is allowed)."""


ALLOWED = ("SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN of the warehouse's tables, "
           "without access to any file")
# SHOW, DESCRIBE, SUMMARIZE and WITH parse as SELECT statements.
_READ_TYPES = frozenset({duckdb.StatementType.SELECT})
_EXPLAIN = re.compile(r"^\s*EXPLAIN\s*(\([^()]*\)\s*)?(ANALY[SZ]E\s+)?", re.IGNORECASE)


def _refused(why: str) -> QueryRefusedError:
    return QueryRefusedError(f"refused ({why}): overnight query is read-only and runs one "
                             f"statement: {ALLOWED}")


def _one_line(error: duckdb.Error) -> str:
    """DuckDB's message on one line (parser and catalog errors add lines: a caret, hints)."""
    lines = [line.strip() for line in str(error).splitlines()]
    return " ".join(line for line in lines if line and set(line) != {"^"}) or repr(error)


def _statements(con: duckdb.DuckDBPyConnection, sql: str) -> list[duckdb.Statement]:
    try:
        return list(con.extract_statements(sql))
    except duckdb.Error as error:   # a parser error, said on one line
        raise QueryRefusedError(_one_line(error)) from None


def read_statement(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.Statement:
    """The single read statement of `sql`, or a one-line refusal saying what is allowed."""
    statements = _statements(con, sql)
    if len(statements) != 1:
        raise _refused(f"{len(statements)} statements")
    statement = statements[0]
    kind = statement.type
    if kind == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE runs its statement: accept it only around a read.
        inner = _statements(con, _EXPLAIN.sub("", statement.query, count=1))
        if len(inner) != 1 or inner[0].type not in _READ_TYPES:
            raise _refused("EXPLAIN only of a SELECT")
        return statement
    if kind not in _READ_TYPES:
        raise _refused(f"{kind.name} statement")
    return statement


def run_query(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """Run one user-written read statement (on a `connect_sandbox` connection)."""
    statement = read_statement(con, sql)
    try:
        return con.execute(statement).df()
    except duckdb.PermissionException:
        raise _refused("it reads or writes a file") from None
    except duckdb.Error as error:
        raise WarehouseError(_one_line(error)) from None


def run_report(
    con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Run a named report with bound parameters; unknown names or parameters are refused."""
    report = REPORTS.get(name)
    if report is None:
        raise UnknownReportError(
            f"unknown report {name!r}; known reports: {', '.join(sorted(REPORTS))}"
        )
    given = dict(params or {})
    unknown = sorted(set(given) - set(report.params))
    if unknown:
        accepted = ", ".join(report.params) or "none"
        raise UnknownReportError(
            f"report {name!r} has no parameter {', '.join(unknown)}; it accepts: {accepted}"
        )
    read_statement(con, report.sql)   # ours, but held to the same rule as a user's query
    bound = {p: given.get(p) for p in report.params}
    return con.execute(report.sql, bound).df() if bound else con.execute(report.sql).df()


def warehouse_status(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Schema version and row count of every table (what `overnight warehouse status` prints)."""
    version = current_version(con)
    names = [
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
    ]
    counts = {}
    for table in names:
        if not _OUR_TABLE.match(table):     # only names we create reach SQL (see below)
            continue
        row = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
        counts[table] = int(row[0]) if row else 0
    missing = [t for t in TABLES if t not in counts]
    return {"schema_version": version, "tables": counts, "missing_tables": missing}
