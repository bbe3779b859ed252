"""Versioned schema migrations of the warehouse.

Each migration is applied once, inside one transaction, and recorded in `schema_version`;
running `migrate` again changes nothing. A later change to the schema is a new entry appended
to `MIGRATIONS`, never an edit of an applied one.

Every row a night writes carries its dataset and, where it has them, batch, model version and
run ids, so one query follows a prediction back to the batches that trained its model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


CORE_TABLES = """
CREATE TABLE datasets (
    dataset      VARCHAR PRIMARY KEY,
    kind         VARCHAR NOT NULL CHECK (kind IN ('tabular', 'text')),
    source       VARCHAR NOT NULL,            -- 'generator' or 'file'
    spec         JSON NOT NULL,               -- the full dataset specification
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

CREATE TABLE batches (
    batch_id          VARCHAR PRIMARY KEY,
    dataset           VARCHAR NOT NULL,
    batch_date        DATE NOT NULL,
    source            VARCHAR NOT NULL,        -- 'generator', 'file'
    scenario          VARCHAR,
    seed              BIGINT,
    n_rows            BIGINT NOT NULL,
    n_labelled        BIGINT NOT NULL,
    status            VARCHAR NOT NULL CHECK (status IN ('accepted', 'quarantined')),
    quarantine_reason VARCHAR,
    source_file       VARCHAR,
    content_sha256    VARCHAR,
    run_id            VARCHAR,
    created_at        TIMESTAMP NOT NULL
);

CREATE TABLE quality_checks (
    batch_id    VARCHAR NOT NULL,
    dataset     VARCHAR NOT NULL,
    check_name  VARCHAR NOT NULL,
    passed      BOOLEAN NOT NULL,
    blocking    BOOLEAN NOT NULL,
    observed    DOUBLE,
    threshold   DOUBLE,
    detail      VARCHAR,
    checked_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (batch_id, check_name)
);

CREATE TABLE training_runs (
    run_id           VARCHAR PRIMARY KEY,
    dataset          VARCHAR NOT NULL,
    pathspec         VARCHAR,                  -- Metaflow's FlowName/run_id
    status           VARCHAR NOT NULL,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP,
    params           JSON,
    training_batches VARCHAR[],
    seed             BIGINT,
    winner_version   VARCHAR,
    error            VARCHAR
);

CREATE TABLE candidate_results (
    run_id            VARCHAR NOT NULL,
    dataset           VARCHAR NOT NULL,
    algorithm         VARCHAR NOT NULL,
    status            VARCHAR NOT NULL CHECK (status IN ('ok', 'failed')),
    rank              INTEGER,
    score             DOUBLE,                  -- multi-criteria ranking score
    accuracy          DOUBLE,
    balanced_accuracy DOUBLE,
    f1_macro          DOUBLE,
    cv_mean           DOUBLE,
    cv_std            DOUBLE,
    fit_seconds       DOUBLE,
    predict_seconds   DOUBLE,
    p_value_vs_best   DOUBLE,
    metrics           JSON,
    params            JSON,
    error             VARCHAR,
    PRIMARY KEY (run_id, algorithm)
);

CREATE TABLE model_versions (
    model_version    VARCHAR PRIMARY KEY,       -- e.g. 'customer-v3'
    dataset          VARCHAR NOT NULL,
    version          INTEGER NOT NULL,
    algorithm        VARCHAR NOT NULL,
    run_id           VARCHAR,
    artifact_path    VARCHAR NOT NULL,
    sha256           VARCHAR NOT NULL,
    card             JSON NOT NULL,
    metrics          JSON,
    training_batches VARCHAR[],
    trained_at       TIMESTAMP NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    UNIQUE (dataset, version)
);

CREATE TABLE model_aliases (
    dataset       VARCHAR NOT NULL,
    alias         VARCHAR NOT NULL CHECK (alias IN ('champion', 'challenger', 'previous')),
    model_version VARCHAR NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (dataset, alias)
);

CREATE SEQUENCE alias_history_seq;
CREATE TABLE alias_history (
    change_id        BIGINT PRIMARY KEY DEFAULT nextval('alias_history_seq'),
    dataset          VARCHAR NOT NULL,
    alias            VARCHAR NOT NULL,
    model_version    VARCHAR,                   -- NULL when the alias was removed
    previous_version VARCHAR,
    reason           VARCHAR,
    changed_by       VARCHAR,
    changed_at       TIMESTAMP NOT NULL
);

CREATE TABLE predictions (
    prediction_id   VARCHAR PRIMARY KEY,
    dataset         VARCHAR NOT NULL,
    model_version   VARCHAR NOT NULL,
    alias           VARCHAR,
    role            VARCHAR NOT NULL DEFAULT 'served',   -- 'served', 'shadow', 'batch'
    request_id      VARCHAR,
    predicted_at    TIMESTAMP NOT NULL,
    predicted_class VARCHAR NOT NULL,
    predicted_index INTEGER,
    confidence      DOUBLE,
    needs_review    BOOLEAN,
    probabilities   JSON,
    inputs          JSON,
    latency_ms      DOUBLE,
    source_file     VARCHAR
);

CREATE TABLE feedback (
    prediction_id VARCHAR PRIMARY KEY,
    label         VARCHAR NOT NULL,
    received_at   TIMESTAMP NOT NULL,
    source        VARCHAR
);

CREATE TABLE drift_reports (
    report_id     VARCHAR PRIMARY KEY,
    dataset       VARCHAR NOT NULL,
    batch_id      VARCHAR NOT NULL,
    model_version VARCHAR,
    night_date    DATE NOT NULL,
    n_reference   BIGINT,
    n_current     BIGINT,
    n_columns     INTEGER,
    n_drifted     INTEGER,
    share_drifted DOUBLE,
    dataset_drift BOOLEAN,
    html_path     VARCHAR,
    created_at    TIMESTAMP NOT NULL
);

CREATE TABLE drift_columns (
    report_id   VARCHAR NOT NULL,
    column_name VARCHAR NOT NULL,
    column_type VARCHAR,
    method      VARCHAR,
    score       DOUBLE,
    threshold   DOUBLE,
    drifted     BOOLEAN,
    PRIMARY KEY (report_id, column_name)
);

CREATE TABLE retraining_decisions (
    decision_id   VARCHAR PRIMARY KEY,
    dataset       VARCHAR NOT NULL,
    batch_id      VARCHAR,
    night_date    DATE NOT NULL,
    model_version VARCHAR,
    retrain       BOOLEAN NOT NULL,
    reason        VARCHAR NOT NULL,
    triggers      JSON,                     -- each trigger's value, threshold and verdict
    decided_at    TIMESTAMP NOT NULL
);

CREATE TABLE validations (
    validation_id      VARCHAR PRIMARY KEY,
    dataset            VARCHAR NOT NULL,
    challenger_version VARCHAR NOT NULL,
    champion_version   VARCHAR,
    passed             BOOLEAN NOT NULL,
    score              DOUBLE,
    reasons            JSON,
    checks             JSON,
    validated_at       TIMESTAMP NOT NULL
);

CREATE TABLE alerts (
    alert_id   VARCHAR PRIMARY KEY,
    dataset    VARCHAR,
    kind       VARCHAR NOT NULL,
    severity   VARCHAR NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    message    VARCHAR NOT NULL,
    details    JSON,
    status     VARCHAR NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    delivered  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    closed_at  TIMESTAMP
);

CREATE TABLE nightly_runs (
    night_id         VARCHAR NOT NULL,
    night_date       DATE NOT NULL,
    dataset          VARCHAR NOT NULL,
    stage            VARCHAR NOT NULL,
    status           VARCHAR NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'skipped')),
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP,
    duration_seconds DOUBLE,
    detail           VARCHAR,
    error            VARCHAR,
    flow_run_id      VARCHAR,
    PRIMARY KEY (night_id, dataset, stage)
);
"""

REPORT_VIEWS = """
CREATE VIEW v_leaderboard AS
SELECT c.dataset, c.run_id, r.finished_at AS trained_at, c.rank, c.algorithm, c.status,
       c.score, c.accuracy, c.balanced_accuracy, c.f1_macro, c.cv_mean, c.cv_std,
       c.fit_seconds, c.p_value_vs_best, c.error
FROM candidate_results c LEFT JOIN training_runs r USING (run_id)
ORDER BY r.finished_at DESC NULLS LAST, c.dataset, c.rank NULLS LAST;

CREATE VIEW v_champion_history AS
SELECT h.dataset, h.changed_at, h.model_version, h.previous_version, h.reason, h.changed_by,
       m.algorithm, m.trained_at
FROM alias_history h LEFT JOIN model_versions m USING (model_version)
WHERE h.alias = 'champion'
ORDER BY h.dataset, h.changed_at;

CREATE VIEW v_drift_trend AS
SELECT dataset, night_date, batch_id, model_version, share_drifted, n_drifted, n_columns,
       dataset_drift, html_path
FROM drift_reports
ORDER BY dataset, night_date;

CREATE VIEW v_daily_accuracy AS
SELECT p.dataset, p.model_version, CAST(p.predicted_at AS DATE) AS day,
       count(*) AS n_labelled,
       avg(CASE WHEN p.predicted_class = f.label THEN 1.0 ELSE 0.0 END) AS accuracy
FROM predictions p JOIN feedback f USING (prediction_id)
WHERE p.role <> 'shadow'
GROUP BY ALL
ORDER BY p.dataset, day;

CREATE VIEW v_lineage AS
SELECT p.prediction_id, p.dataset, p.predicted_at, p.model_version, m.algorithm,
       m.run_id, r.pathspec, b.batch_id AS training_batch, b.batch_date, b.source AS batch_source
FROM predictions p
JOIN model_versions m USING (model_version)
LEFT JOIN training_runs r ON r.run_id = m.run_id
LEFT JOIN (SELECT model_version, unnest(training_batches) AS batch_id FROM model_versions) t
       ON t.model_version = m.model_version
LEFT JOIN batches b ON b.batch_id = t.batch_id;

CREATE VIEW v_quarantine AS
SELECT b.dataset, b.batch_id, b.batch_date, b.quarantine_reason, b.n_rows, b.created_at
FROM batches b WHERE b.status = 'quarantined'
ORDER BY b.created_at DESC;
"""

MODEL_SIGNATURES = """
-- one row per signed model version: the HMAC-SHA256 signature (models/registry/signing.py) over the
-- statement that binds the artifact's sha256 to its dataset, version, path and card; a table
-- of its own so that signing an existing home (`overnight registry sign`) never rewrites
-- model_versions
CREATE TABLE model_signatures (
    model_version VARCHAR PRIMARY KEY,
    signature     VARCHAR NOT NULL,
    statement     JSON NOT NULL,
    key_id        VARCHAR NOT NULL,
    signed_at     TIMESTAMP NOT NULL
);
"""

ROLLBACK_CHECKS = """
-- one row per dataset and night: the automatic-rollback watch of the champion
-- (monitoring/rollback.py), with its evidence whether or not it rolled back; a re-run of the
-- night replaces the row, except one that rolled back, which stays as it was
CREATE TABLE rollback_checks (
    dataset             VARCHAR NOT NULL,
    night_date          DATE NOT NULL,
    champion_version    VARCHAR,              -- the champion examined
    previous_version    VARCHAR,              -- the version a rollback restores
    rollback            BOOLEAN NOT NULL,
    rule                VARCHAR,              -- 'performance', 'artifact_refused' or NULL
    reason              VARCHAR NOT NULL,
    n_labelled          BIGINT,               -- the champion's labelled predictions
    n_correct           BIGINT,
    accuracy            DOUBLE,
    previous_n_labelled BIGINT,               -- the previous champion's, over its last days
    previous_n_correct  BIGINT,
    previous_accuracy   DOUBLE,
    baseline_source     VARCHAR,              -- 'labelled', 'held-out' (its card) or NULL
    accuracy_drop       DOUBLE,
    margin              DOUBLE,
    min_labels          BIGINT,
    alpha               DOUBLE,
    p_value             DOUBLE,
    test                VARCHAR,
    refused             VARCHAR,              -- serving's refusal of the champion's artifact
    cooldown_held       BOOLEAN NOT NULL,
    switched_on         DATE,                 -- the night of the champion's last switch
    switch_id           BIGINT,               -- alias_history change of the champion after the
                                              -- check (the rollback's own when it rolled back)
    restored_version    VARCHAR,
    alert_id            VARCHAR,
    decided_at          TIMESTAMP NOT NULL,
    PRIMARY KEY (dataset, night_date)
);
"""

SERVED_DRIFT = """
-- drift of served traffic (issue 21): a drift report says what it measured, the night's batch
-- or the inputs served since the last night; a served report has no batch
ALTER TABLE drift_reports ADD COLUMN source VARCHAR DEFAULT 'batch';   -- 'batch' or 'served'
ALTER TABLE drift_reports ADD COLUMN window_start TIMESTAMP;   -- served: first predicted_at
ALTER TABLE drift_reports ADD COLUMN window_end TIMESTAMP;     -- served: last predicted_at
ALTER TABLE drift_reports ALTER COLUMN batch_id DROP NOT NULL;

-- typed copies of served inputs (monitoring/drift/served_store.py): one Parquet file per
-- dataset and collect run, columns c0..cN in spec order (`columns` maps them to features)
CREATE TABLE served_files (
    file_id            VARCHAR PRIMARY KEY,
    dataset            VARCHAR NOT NULL,
    path               VARCHAR NOT NULL,
    n_rows             BIGINT NOT NULL,
    first_predicted_at TIMESTAMP,
    last_predicted_at  TIMESTAMP,
    columns            JSON NOT NULL,
    created_at         TIMESTAMP NOT NULL,
    report_id          VARCHAR                     -- the served drift report that read it
);

-- the landed prediction files already typed (each is typed once)
CREATE TABLE served_sources (
    source_file VARCHAR PRIMARY KEY,
    typed_at    TIMESTAMP NOT NULL
);

CREATE OR REPLACE VIEW v_drift_trend AS
SELECT dataset, night_date, batch_id, model_version, share_drifted, n_drifted, n_columns,
       dataset_drift, html_path, coalesce(source, 'batch') AS source
FROM drift_reports
ORDER BY dataset, night_date;
"""

COSTS = """
-- what each model cost (monitoring/costs.py prices it with the policy's prices per CPU-hour
-- and GB-hour). One row per task of a training run (step 'start', 'train' per branch, 'join')
-- and one 'total' row, written by the flow's join step (models/training/costs.py)
CREATE TABLE training_costs (
    run_id         VARCHAR NOT NULL,          -- training_runs.run_id (the Metaflow pathspec)
    model_version  VARCHAR,                   -- the version the run registered
    dataset        VARCHAR NOT NULL,
    step           VARCHAR NOT NULL,          -- start, train, join, total
    branch         VARCHAR NOT NULL,          -- the algorithm of a train branch, else ''
    status         VARCHAR NOT NULL,          -- ok, failed (a branch @catch caught)
    attempts       INTEGER,
    cpu_seconds    DOUBLE,                    -- user + system, the task and its children
    wall_seconds   DOUBLE,
    peak_rss_mb    DOUBLE,                    -- ru_maxrss of the task (or its largest child)
    gb_hours       DOUBLE,                    -- peak memory x wall time
    recorded_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, step, branch)
);

-- one row per serving worker, interval and model version (models/serving/costs.py lands
-- them, `overnight collect` stores them)
CREATE TABLE serving_costs (
    sample_id           VARCHAR PRIMARY KEY,  -- the landed file's id and the model version
    worker              VARCHAR NOT NULL,     -- host-pid
    dataset             VARCHAR NOT NULL,
    model_version       VARCHAR NOT NULL,
    interval_start      TIMESTAMP NOT NULL,
    interval_end        TIMESTAMP NOT NULL,
    predictions         BIGINT NOT NULL,      -- served and shadow rows scored
    requests            BIGINT NOT NULL,
    cpu_seconds         DOUBLE NOT NULL,      -- measured + its share of the worker's overhead
    request_cpu_seconds DOUBLE NOT NULL,      -- measured in the requests' own threads
    gb_hours            DOUBLE NOT NULL,      -- the worker's peak memory x interval, shared
    source_file         VARCHAR
);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "core tables", CORE_TABLES),
    Migration(2, "report views", REPORT_VIEWS),
    Migration(3, "model signatures", MODEL_SIGNATURES),
    Migration(4, "served drift", SERVED_DRIFT),
    Migration(5, "rollback checks", ROLLBACK_CHECKS),
    Migration(6, "training and serving costs", COSTS),
)

TABLES = (
    "datasets", "batches", "quality_checks", "training_runs", "candidate_results",
    "model_versions", "model_aliases", "alias_history", "predictions", "feedback",
    "drift_reports", "drift_columns", "retraining_decisions", "validations", "alerts",
    "nightly_runs", "model_signatures", "served_files", "served_sources",
    "rollback_checks", "training_costs", "serving_costs",
)
VIEWS = (
    "v_leaderboard", "v_champion_history", "v_drift_trend", "v_daily_accuracy", "v_lineage",
    "v_quarantine",
)


def _ensure_version_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest applied migration (0 for an empty file)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(con: duckdb.DuckDBPyConnection) -> list[Migration]:
    """Apply the migrations this file has not seen yet; return the ones applied."""
    _ensure_version_table(con)
    applied: list[Migration] = []
    for migration in MIGRATIONS:
        if migration.version <= current_version(con):
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                [migration.version, migration.name, datetime.now(UTC).replace(tzinfo=None)],
            )
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        applied.append(migration)
    return applied
