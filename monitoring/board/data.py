"""Everything the status board reads, as plain functions returning pandas frames.

Why a module of its own: the pages stay thin (they only lay out what these functions return),
and every number the board shows is tested here without Streamlit.

How it reads. DuckDB lets no other process open the file, not even read-only, while a writer
holds it, and a reader that lingers would in turn block the nightly writer. So each loader
opens one read-only connection (`reading`), runs its queries, closes it, and returns frames;
while a writer holds the file it retries for `BUSY_WAIT_SECONDS` only (not the writers' minute)
and then raises `WarehouseBusy`, which the board shows as a message and retries later. A data
home without a warehouse (or with an empty one) is not an error: `board_state` says so and the
board shows the first-run command instead.

Every query function takes an open connection first (`champions(con, filters)`); the page
bundles (`overview`, `nights`, ...) run several on one connection; `read(fn, *args)` opens that
connection for the moment it needs and closes it.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd

from warehouse import OvernightError, WarehouseLockedError, current_version
from warehouse.connection import open_connection
from warehouse.settings import get_settings

BUSY_WAIT_SECONDS = 3.0
BUSY_MESSAGE = "The warehouse is busy: the nightly run is writing; retrying shortly."
FIRST_RUN_COMMAND = "overnight demo"
# The order of a night's stages (orchestration.night.STAGES; monitoring may not import it).
STAGES = ("ingest", "monitor", "decide", "train", "promote")
ROLES = ("served", "shadow", "batch")
ALIASES = ("champion", "challenger", "previous")
# Drift methods whose score is a p-value (drift when small); the others are distances.
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
SIGNIFICANCE_LEVEL = 0.05
CONFIDENCE_BUCKETS = 10
SCHEMA_VERSION = 2          # the board reads the tables of migration 1 and the views of 2


T = TypeVar("T")


class BoardUnavailable(OvernightError):
    """The board cannot read the warehouse right now; the message says why and what to do."""


class WarehouseBusy(BoardUnavailable):
    """A writer (the nightly run, a training, an ingest) held the file longer than we wait."""

    def __init__(self, path: Path, holder: str, waited: float) -> None:
        self.path, self.holder, self.waited = path, holder, waited
        super().__init__(f"{BUSY_MESSAGE} ({path} held by {holder}; waited {waited:.0f} s)")


class NoWarehouse(BoardUnavailable):
    """No warehouse yet in this data home, or one whose schema was never created."""


def first_run_message(home: Path) -> str:
    """What a new user should do: the one command that fills a data home with a week."""
    return (f"No nights recorded yet in {home}. Run `{FIRST_RUN_COMMAND}` to simulate a week "
            "of nights for the built-in datasets (or `overnight nightly` for tonight), then "
            "reload this page.")


@dataclass(frozen=True)
class Filters:
    """The sidebar's choice: datasets (None = all) and an inclusive date range."""

    datasets: tuple[str, ...] | None = None
    start: date | None = None
    end: date | None = None

    def params(self) -> dict[str, Any]:
        return {"datasets": None if self.datasets is None else list(self.datasets),
                "start": self.start, "end": self.end}


def warehouse_file(path: Path | str | None = None) -> Path:
    return Path(path) if path is not None else get_settings().warehouse_path


@contextmanager
def reading(path: Path | str | None = None, wait: float = BUSY_WAIT_SECONDS
            ) -> Iterator[duckdb.DuckDBPyConnection]:
    """One short read-only connection; `WarehouseBusy` when a writer holds it past `wait`."""
    db = warehouse_file(path)
    if not db.exists():
        raise NoWarehouse(first_run_message(db.parent))
    try:
        con = open_connection(db, read_only=True, timeout=wait)
    except WarehouseLockedError as error:
        raise WarehouseBusy(db, error.holder, error.waited) from error
    try:
        if current_version(con) < SCHEMA_VERSION:
            raise NoWarehouse(first_run_message(db.parent))
        yield con
    finally:
        con.close()


def read(query: Callable[..., T], *args: Any, path: Path | str | None = None) -> T:
    """Run one query function (`query(con, *args)`) on its own short read-only connection."""
    with reading(path) as con:
        return query(con, *args)


def is_free(path: Path | str | None = None) -> bool:
    """Whether a reader can open the warehouse this instant (no writer holds it)."""
    try:
        with reading(path, wait=0.1):
            return True
    except WarehouseBusy:
        return False
    except NoWarehouse:
        return True


_PARAM = re.compile(r"\$(\w+)")


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
           ) -> pd.DataFrame:
    """Run SQL with only the parameters it names bound (DuckDB refuses unused ones)."""
    used = set(_PARAM.findall(sql))
    bound = {k: v for k, v in (params or {}).items() if k in used}
    return con.execute(sql, bound).df() if bound else con.execute(sql).df()


def _scope(day: str | None, dataset: str = "dataset", keep_global: bool = False) -> str:
    """The WHERE clause of the sidebar filters, over a dataset column and a date expression."""
    datasets = f"($datasets::VARCHAR[] IS NULL OR list_contains($datasets::VARCHAR[], {dataset})"
    datasets += f" OR {dataset} IS NULL)" if keep_global else ")"
    if day is None:
        return datasets
    return (f"{datasets} AND ($start::DATE IS NULL OR {day} >= $start::DATE)"
            f" AND ($end::DATE IS NULL OR {day} <= $end::DATE)")


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    return row[0] if row else None


def _metric(column: str, name: str) -> str:
    """A number of a JSON metrics column as a column of its own."""
    return f"TRY_CAST({column} ->> '$.{name}' AS DOUBLE) AS {name}"


# ------------------------------------------------------------------------- the whole board


@dataclass(frozen=True)
class BoardState:
    """What the sidebar and the first-run check need: is there anything, for which datasets
    and dates, and when the warehouse was last written."""

    path: Path
    exists: bool
    datasets: tuple[str, ...] = ()
    first_day: date | None = None
    last_day: date | None = None
    last_night: date | None = None
    last_written: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.counts.get(t) for t in ("nightly_runs", "model_versions", "batches"))


_COUNTED = ("nightly_runs", "model_versions", "batches", "predictions", "drift_reports",
            "alerts")
# Timestamps of the moments rows were written (not the simulated night dates).
_WRITTEN = (("nightly_runs", "finished_at"), ("batches", "created_at"),
            ("model_versions", "created_at"), ("alias_history", "changed_at"),
            ("drift_reports", "created_at"), ("retraining_decisions", "decided_at"),
            ("alerts", "created_at"), ("validations", "validated_at"),
            ("training_runs", "finished_at"))


def board_state(path: Path | str | None = None) -> BoardState:
    """The board's starting point; an absent or unmigrated warehouse is an empty state."""
    db = warehouse_file(path)
    try:
        with reading(db) as con:
            counts = {t: int(_scalar(con, f"SELECT count(*) FROM {t}") or 0) for t in _COUNTED}
            datasets = [r[0] for r in con.execute(
                "SELECT dataset FROM datasets UNION SELECT dataset FROM model_versions"
                " UNION SELECT dataset FROM nightly_runs ORDER BY 1").fetchall()]
            days = "(SELECT night_date AS d FROM nightly_runs UNION ALL SELECT night_date FROM" \
                " drift_reports UNION ALL SELECT CAST(predicted_at AS DATE) FROM predictions" \
                " UNION ALL SELECT CAST(created_at AS DATE) FROM alerts)"
            first, last = (_scalar(con, f"SELECT {f}(d) FROM {days}") for f in ("min", "max"))
            night = _scalar(con, "SELECT max(night_date) FROM nightly_runs")
            written = _scalar(con, "SELECT max(t) FROM (" + " UNION ALL ".join(
                f"SELECT max({c}) AS t FROM {t}" for t, c in _WRITTEN) + ")")
    except NoWarehouse:
        return BoardState(db, exists=False)
    return BoardState(db, True, tuple(datasets), first, last, night, written, counts)


def _age(delta: timedelta) -> str:
    seconds = max(delta.total_seconds(), 0)
    for unit, size in (("days", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def freshness(state: BoardState, now: datetime | None = None) -> str:
    """How current the board is: when the warehouse was last written, and the last night."""
    if state.last_written is None:
        return "The warehouse has no rows yet."
    now = now or datetime.now(UTC).replace(tzinfo=None)
    night = f" Last night recorded: {state.last_night:%Y-%m-%d}." if state.last_night else ""
    return (f"Warehouse last written {state.last_written:%Y-%m-%d %H:%M} UTC "
            f"({_age(now - state.last_written)} ago).{night}")


# ------------------------------------------------------------------------------ overview


def champions(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Each dataset's champion now, with what it is and how it scored at training."""
    return _frame(con, (
        "SELECT a.dataset, a.model_version, m.algorithm, m.trained_at,"
        " a.updated_at AS promoted_at, " + ", ".join(
            _metric("m.metrics", n) for n in ("accuracy", "f1_macro", "balanced_accuracy")) +
        " FROM model_aliases a LEFT JOIN model_versions m USING (model_version)"
        " WHERE a.alias = 'champion' AND " + _scope(None, "a.dataset") + " ORDER BY a.dataset"),
        filters.params())


def last_nights(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Every stage of each dataset's latest night within the date range."""
    return _frame(con, (
        "WITH latest AS (SELECT dataset, max(night_date) AS night_date FROM nightly_runs"
        " WHERE " + _scope("night_date") + " GROUP BY dataset)"
        " SELECT n.dataset, n.night_date, n.stage, n.status, n.duration_seconds, n.detail,"
        " n.error FROM nightly_runs n JOIN latest USING (dataset, night_date)"
        " ORDER BY n.dataset, n.started_at"), filters.params())


def open_alert_counts(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Open alerts per dataset and severity (open now, whatever the date range)."""
    return _frame(con, (
        "SELECT coalesce(dataset, '(all)') AS dataset, severity, count(*) AS n FROM alerts"
        " WHERE status = 'open' AND " + _scope(None, keep_global=True) +
        " GROUP BY ALL ORDER BY 1, 2"), filters.params())


def stage_matrix(runs: pd.DataFrame) -> pd.DataFrame:
    """Stages as columns (in running order), one row per dataset and night: status or ''."""
    if runs.empty:
        return pd.DataFrame(columns=["dataset", "night_date", *STAGES])
    wide = runs.pivot_table(index=["dataset", "night_date"], columns="stage", values="status",
                            aggfunc="first").reset_index()
    stages = [s for s in STAGES if s in wide.columns] + sorted(
        c for c in wide.columns if c not in (*STAGES, "dataset", "night_date"))
    wide = wide.reindex(columns=["dataset", "night_date", *stages]).fillna("")
    wide.columns.name = None
    return wide


@dataclass(frozen=True)
class Overview:
    champions: pd.DataFrame
    last_nights: pd.DataFrame
    alerts: pd.DataFrame


def overview(con: duckdb.DuckDBPyConnection, filters: Filters) -> Overview:
    return Overview(champions(con, filters), last_nights(con, filters),
                    open_alert_counts(con, filters))


# -------------------------------------------------------------------------------- nights


def night_runs(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    return _frame(con, (
        "SELECT night_date, dataset, stage, status, started_at, finished_at, duration_seconds,"
        " detail, error FROM nightly_runs WHERE " + _scope("night_date") +
        " ORDER BY night_date DESC, dataset, started_at"), filters.params())


def decisions(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    return _frame(con, (
        "SELECT night_date, dataset, retrain, reason, model_version, triggers"
        " FROM retraining_decisions WHERE " + _scope("night_date") +
        " ORDER BY night_date DESC, dataset"), filters.params())


def _shown(value: Any) -> str:
    """A trigger's value for a table column that mixes numbers and names."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def expand_triggers(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (night, dataset, trigger): its value against its threshold, fired or not."""
    rows = []
    for night, dataset, text in frame[["night_date", "dataset", "triggers"]].itertuples(
            index=False):
        for trigger in json.loads(text) if text else []:
            rows.append({"night_date": night, "dataset": dataset, "trigger": trigger["name"],
                         "value": _shown(trigger.get("value")),
                         "threshold": trigger.get("threshold"),
                         "fired": bool(trigger.get("fired")), "note": trigger.get("note", "")})
    return pd.DataFrame(rows, columns=["night_date", "dataset", "trigger", "value", "threshold",
                                       "fired", "note"])


@dataclass(frozen=True)
class Nights:
    """The stages of the nights in range, and their decisions (with the triggers' JSON)."""

    runs: pd.DataFrame
    decisions: pd.DataFrame

    @property
    def triggers(self) -> pd.DataFrame:
        return expand_triggers(self.decisions)


def nights(con: duckdb.DuckDBPyConnection, filters: Filters) -> Nights:
    return Nights(night_runs(con, filters), decisions(con, filters))


# --------------------------------------------------------------------------- performance


def metrics_from_counts(counts: pd.DataFrame) -> dict[str, Any]:
    """Accuracy, macro F1 and per-class recall from (label, predicted_class, n) counts.

    The same figures as `monitoring.performance` computes from the labelled pairs with
    scikit-learn (F1 over the classes seen or predicted, recall of each true class), but from
    a confusion table that SQL aggregates, so a long date range never loads every row.
    """
    total = int(counts["n"].sum())
    if total == 0:
        return {"n_labelled": 0, "accuracy": math.nan, "f1_macro": math.nan,
                "recall_per_class": {}}
    hits = counts[counts["label"] == counts["predicted_class"]].groupby("label")["n"].sum()
    support = counts.groupby("label")["n"].sum()
    predicted = counts.groupby("predicted_class")["n"].sum()
    f1s, recalls = [], {}
    for name in sorted(set(support.index) | set(predicted.index)):
        tp = float(hits.get(name, 0))
        recall = tp / support[name] if support.get(name, 0) else 0.0
        precision = tp / predicted[name] if predicted.get(name, 0) else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        if name in support.index:
            recalls[name] = recall
    return {"n_labelled": total, "accuracy": float(hits.sum()) / total,
            "f1_macro": sum(f1s) / len(f1s), "recall_per_class": recalls}


def daily_performance(con: duckdb.DuckDBPyConnection, dataset: str, filters: Filters
                      ) -> pd.DataFrame:
    """Per day and model version, the serving champion's figures over its labelled rows."""
    counts = _frame(con, (
        "SELECT CAST(p.predicted_at AS DATE) AS day, p.model_version, f.label,"
        " p.predicted_class, count(*) AS n FROM predictions p JOIN feedback f"
        " USING (prediction_id) WHERE p.dataset = $dataset AND p.role <> 'shadow'"
        " AND coalesce(p.alias, 'champion') = 'champion'"
        " AND ($start::DATE IS NULL OR CAST(p.predicted_at AS DATE) >= $start::DATE)"
        " AND ($end::DATE IS NULL OR CAST(p.predicted_at AS DATE) <= $end::DATE)"
        " GROUP BY ALL ORDER BY 1, 2"), {**filters.params(), "dataset": dataset})
    rows = [{"day": day, "model_version": version, **metrics_from_counts(group)}
            for (day, version), group in counts.groupby(["day", "model_version"], sort=True)]
    return pd.DataFrame(rows, columns=["day", "model_version", "n_labelled", "accuracy",
                                       "f1_macro", "recall_per_class"])


def recall_long(daily: pd.DataFrame) -> pd.DataFrame:
    """Per-class recall as rows (day, model_version, class, recall, n_labelled) for a chart."""
    rows = [{"day": r.day, "model_version": r.model_version, "class": name, "recall": value,
             "n_labelled": r.n_labelled}
            for r in daily.itertuples(index=False) for name, value in r.recall_per_class.items()]
    return pd.DataFrame(rows, columns=["day", "model_version", "class", "recall", "n_labelled"])


def champion_switches(con: duckdb.DuckDBPyConnection, dataset: str, filters: Filters
                      ) -> pd.DataFrame:
    """Every change of champion, dated by the night it happened in (promotions happen inside
    a night's run, whose dates may be simulated), else by the day of the change."""
    return _frame(con, (
        "WITH windows AS (SELECT dataset, night_date, min(started_at) AS first,"
        " max(finished_at) AS last FROM nightly_runs WHERE dataset = $dataset GROUP BY ALL),"
        " switches AS (SELECT h.change_id, h.changed_at, h.model_version, h.previous_version,"
        " h.reason, h.changed_by, coalesce((SELECT max(w.night_date) FROM windows w"
        " WHERE h.changed_at BETWEEN w.first AND w.last), CAST(h.changed_at AS DATE)) AS night"
        " FROM alias_history h WHERE h.dataset = $dataset AND h.alias = 'champion')"
        " SELECT night, model_version, previous_version, reason, changed_by, changed_at"
        " FROM switches WHERE ($start::DATE IS NULL OR night >= $start::DATE)"
        " AND ($end::DATE IS NULL OR night <= $end::DATE) ORDER BY change_id"),
        {**filters.params(), "dataset": dataset})


@dataclass(frozen=True)
class Performance:
    daily: pd.DataFrame
    recall: pd.DataFrame
    switches: pd.DataFrame


def performance(con: duckdb.DuckDBPyConnection, dataset: str, filters: Filters
                ) -> Performance:
    daily = daily_performance(con, dataset, filters)
    return Performance(daily, recall_long(daily), champion_switches(con, dataset, filters))


# --------------------------------------------------------------------------------- drift


def relative_drift(method: str | None, score: float | None, threshold: float | None,
                   drifted: bool | None) -> float:
    """A column's drift score on one scale for every test: 1 at its threshold, above 1 drift.

    p-value tests drift when the score is small, distances when it is large; the heat map
    needs one direction, so p-values map to log(p)/log(threshold) and distances to
    score/threshold. Without a usable score the verdict alone gives 0 or 1.
    """
    fallback = 1.0 if drifted else 0.0
    if score is None or threshold is None or threshold <= 0 or math.isnan(score):
        return fallback
    if method in P_VALUE_METHODS:
        if threshold >= 1:
            return fallback
        return math.log(max(score, 1e-300)) / math.log(threshold)
    return score / threshold


def drift_trend(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    return _frame(con, (
        "SELECT dataset, night_date, batch_id, model_version, share_drifted, n_drifted,"
        " n_columns, dataset_drift, html_path FROM v_drift_trend WHERE " +
        _scope("night_date") + " ORDER BY dataset, night_date"), filters.params())


def drift_columns(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Per-column verdicts of each night, with the score on the common scale."""
    frame = _frame(con, (
        "SELECT r.dataset, r.night_date, c.column_name, c.column_type, c.method, c.score,"
        " c.threshold, c.drifted FROM drift_columns c JOIN drift_reports r USING (report_id)"
        " WHERE " + _scope("r.night_date", "r.dataset") +
        " ORDER BY r.dataset, r.night_date, c.column_name"), filters.params())
    frame["relative"] = [relative_drift(m, None if pd.isna(s) else float(s),
                                        None if pd.isna(t) else float(t), bool(d))
                         for m, s, t, d in frame[["method", "score", "threshold",
                                                  "drifted"]].itertuples(index=False)]
    return frame


@dataclass(frozen=True)
class Drift:
    trend: pd.DataFrame
    columns: pd.DataFrame


def drift(con: duckdb.DuckDBPyConnection, filters: Filters) -> Drift:
    return Drift(drift_trend(con, filters), drift_columns(con, filters))


# -------------------------------------------------------------------------------- models


def training_runs(con: duckdb.DuckDBPyConnection, dataset: str) -> pd.DataFrame:
    return _frame(con, (
        "SELECT r.run_id, r.status, r.started_at, r.finished_at, r.winner_version,"
        " count(c.algorithm) AS candidates,"
        " count(c.algorithm) FILTER (WHERE c.status = 'failed') AS failed"
        " FROM training_runs r LEFT JOIN candidate_results c USING (run_id)"
        " WHERE r.dataset = $dataset GROUP BY ALL ORDER BY r.started_at DESC NULLS LAST"),
        {"dataset": dataset})


def significance(p_value: float | None, rank: float | None) -> str:
    """The McNemar verdict against the run's best candidate, in words."""
    if rank is not None and not pd.isna(rank) and rank == 1:
        return "best"
    if p_value is None or pd.isna(p_value):
        return "not tested"
    if p_value < SIGNIFICANCE_LEVEL:
        return f"worse than the best (p={p_value:.2g})"
    return f"not significantly different (p={p_value:.2g})"


def leaderboard(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    """A run's candidates, best first: metrics, fit time, rank and significance."""
    frame = _frame(con, (
        "SELECT rank, algorithm, status, score, accuracy, balanced_accuracy, f1_macro,"
        " cv_mean, cv_std, fit_seconds, p_value_vs_best, error FROM v_leaderboard"
        " WHERE run_id = $run ORDER BY rank NULLS LAST, algorithm"), {"run": run_id})
    frame.insert(frame.columns.get_loc("p_value_vs_best") + 1, "significance",
                 [significance(p, r) for p, r in frame[["p_value_vs_best", "rank"]].itertuples(
                     index=False)])
    return frame


def aliases(con: duckdb.DuckDBPyConnection, dataset: str) -> pd.DataFrame:
    return _frame(con, (
        "SELECT names.alias, a.model_version, m.algorithm, m.trained_at, a.updated_at, " +
        ", ".join(_metric("m.metrics", n) for n in ("accuracy", "f1_macro")) +
        " FROM (SELECT unnest($names::VARCHAR[]) AS alias) names"
        " LEFT JOIN model_aliases a ON a.alias = names.alias AND a.dataset = $dataset"
        " LEFT JOIN model_versions m ON m.model_version = a.model_version"
        " ORDER BY list_position($names::VARCHAR[], names.alias)"),
        {"dataset": dataset, "names": list(ALIASES)})


def alias_history(con: duckdb.DuckDBPyConnection, dataset: str) -> pd.DataFrame:
    return _frame(con, (
        "SELECT changed_at, alias, model_version, previous_version, reason, changed_by"
        " FROM alias_history WHERE dataset = $dataset ORDER BY change_id DESC"),
        {"dataset": dataset})


def versions(con: duckdb.DuckDBPyConnection, dataset: str) -> pd.DataFrame:
    return _frame(con, (
        "SELECT model_version, version, algorithm, trained_at, run_id, " + ", ".join(
            _metric("metrics", n) for n in ("accuracy", "f1_macro", "balanced_accuracy")) +
        ", array_to_string(training_batches, ', ') AS training_batches, artifact_path, card"
        " FROM model_versions WHERE dataset = $dataset ORDER BY version DESC"),
        {"dataset": dataset})


@dataclass(frozen=True)
class Models:
    runs: pd.DataFrame
    aliases: pd.DataFrame
    history: pd.DataFrame
    versions: pd.DataFrame


def models(con: duckdb.DuckDBPyConnection, dataset: str) -> Models:
    return Models(training_runs(con, dataset), aliases(con, dataset),
                  alias_history(con, dataset), versions(con, dataset))


def report_files(card: dict[str, Any], artifact_path: str | Path) -> dict[str, Path]:
    """The readable reports of a version that exist on disk, by title.

    The training flow writes them under reports/models/DATASET/RUN (their paths are in the
    card's `reports`); a report.html beside the artifact counts too (registered by hand).
    """
    found: dict[str, Path] = {}
    listed = card.get("reports") or {}
    beside = Path(artifact_path).parent
    for title, key, name in (("Model report", "model_report", "report.html"),
                             ("Production report", "production_report", "production.html")):
        for candidate in (listed.get(key), beside / name):
            if candidate and Path(candidate).is_file():
                found[title] = Path(candidate)
                break
    return found


_IMAGE = re.compile(r'src="(?P<name>[^"/:]+\.(?P<ext>png|jpe?g|gif|svg))"')
_MIME = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
         "svg": "image/svg+xml"}


def inline_images(text: str, folder: Path) -> str:
    """An HTML report with its relative images embedded, so it shows (and downloads) whole."""
    def embed(match: re.Match[str]) -> str:
        image = folder / match["name"]
        if not image.is_file():
            return match[0]
        encoded = base64.b64encode(image.read_bytes()).decode("ascii")
        return f'src="data:{_MIME[match["ext"].lower()]};base64,{encoded}"'
    return _IMAGE.sub(embed, text)


def read_report(path: Path) -> str:
    """A report's HTML, self-contained."""
    return inline_images(path.read_text(encoding="utf-8"), path.parent)


@dataclass(frozen=True)
class Lineage:
    """One version's lineage: predictions -> model -> training run -> training batches."""

    model: dict[str, Any]
    run: dict[str, Any] | None
    batches: pd.DataFrame
    predictions: pd.DataFrame
    example: pd.DataFrame = field(default_factory=pd.DataFrame)


def _record(frame: pd.DataFrame) -> dict[str, Any] | None:
    return None if frame.empty else frame.iloc[0].to_dict()


def lineage(con: duckdb.DuckDBPyConnection, model_version: str) -> Lineage:
    model = _record(_frame(con, (
        "SELECT model_version, dataset, algorithm, trained_at, run_id, left(sha256, 12) AS sha256,"
        " training_batches FROM model_versions WHERE model_version = $v"), {"v": model_version}))
    if model is None:
        raise BoardUnavailable(f"no model version {model_version!r} in the warehouse")
    run = _record(_frame(con, (
        "SELECT run_id, pathspec, status, started_at, finished_at, seed FROM training_runs"
        " WHERE run_id = $r"), {"r": model["run_id"]}))
    batches = _frame(con, (
        "SELECT t.batch_id, b.batch_date, b.source, b.scenario, b.n_rows, b.n_labelled,"
        " b.status FROM (SELECT unnest(training_batches) AS batch_id FROM model_versions"
        " WHERE model_version = $v) t LEFT JOIN batches b USING (batch_id)"
        " ORDER BY b.batch_date"), {"v": model_version})
    predictions = _frame(con, (
        "SELECT role, count(*) AS predictions, min(predicted_at) AS first,"
        " max(predicted_at) AS last, arg_max(prediction_id, predicted_at) AS latest"
        " FROM predictions WHERE model_version = $v GROUP BY role ORDER BY role"),
        {"v": model_version})
    example = pd.DataFrame()
    if not predictions.empty:
        example = prediction_lineage(con, predictions.sort_values("last").iloc[-1]["latest"])
    return Lineage({k: v for k, v in model.items() if k != "training_batches"}, run, batches,
                   predictions, example)


def prediction_lineage(con: duckdb.DuckDBPyConnection, prediction_id: str) -> pd.DataFrame:
    """The `v_lineage` rows of one prediction: its model, training run and batches."""
    return _frame(con, "SELECT * FROM v_lineage WHERE prediction_id = $p", {"p": prediction_id})


def _quote(text: Any) -> str:
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def lineage_dot(found: Lineage) -> str:
    """The lineage as a Graphviz graph, left to right: predictions, model, run, batches."""
    model = f"model {found.model['model_version']}\n{found.model['algorithm']}"
    lines = ["digraph lineage {", "rankdir=LR;",
             'node [shape=box, style="rounded,filled", fillcolor="#f5f7fa", fontname="Helvetica"];',
             f'model [label={_quote(model)}, fillcolor="#dbeafe"];']
    for index, row in enumerate(found.predictions.itertuples(index=False)):
        label = f"{row.predictions} {row.role} predictions"
        lines += [f"pred_{index} [label={_quote(label)}];", f"pred_{index} -> model;"]
    if found.run is not None:
        label = f"training run\n{found.run['pathspec'] or found.run['run_id']}"
        lines += [f"run [label={_quote(label)}];", "model -> run;"]
    source = "run" if found.run is not None else "model"
    for index, row in enumerate(found.batches.itertuples(index=False)):
        label = f"batch {row.batch_id}" + (f"\n{int(row.n_rows)} rows" if pd.notna(row.n_rows)
                                           else "")
        lines += [f"batch_{index} [label={_quote(label)}];", f"{source} -> batch_{index};"]
    return "\n".join([*lines, "}"])


# ---------------------------------------------------------------------------- predictions


def _roles(roles: Sequence[str] | None) -> list[str]:
    return list(roles) if roles else list(ROLES)


def role_counts(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    return _frame(con, (
        "SELECT role, count(*) AS predictions, min(predicted_at) AS first,"
        " max(predicted_at) AS last FROM predictions WHERE " +
        _scope("CAST(predicted_at AS DATE)") + " GROUP BY role ORDER BY role"),
        filters.params())


def prediction_daily(con: duckdb.DuckDBPyConnection, filters: Filters, roles: Sequence[str]
                     ) -> pd.DataFrame:
    """Per day, dataset and role: volume, confidence quantiles, share flagged for review."""
    return _frame(con, (
        "SELECT CAST(predicted_at AS DATE) AS day, dataset, role, count(*) AS predictions,"
        " avg(confidence) AS mean_confidence,"
        " quantile_cont(confidence, 0.1) AS confidence_p10,"
        " quantile_cont(confidence, 0.5) AS confidence_median,"
        " quantile_cont(confidence, 0.9) AS confidence_p90,"
        " avg(CAST(needs_review AS DOUBLE)) AS review_share,"
        " count(needs_review) FILTER (WHERE needs_review) AS needs_review,"
        " avg(latency_ms) AS mean_latency_ms FROM predictions WHERE list_contains($roles, role)"
        " AND " + _scope("CAST(predicted_at AS DATE)") + " GROUP BY ALL ORDER BY 1, 2, 3"),
        {**filters.params(), "roles": _roles(roles)})


def class_distribution(con: duckdb.DuckDBPyConnection, filters: Filters,
                       roles: Sequence[str]) -> pd.DataFrame:
    """Per day, dataset and predicted class: count and share of the day's predictions."""
    frame = _frame(con, (
        "SELECT CAST(predicted_at AS DATE) AS day, dataset, predicted_class, count(*) AS n"
        " FROM predictions WHERE list_contains($roles, role) AND " +
        _scope("CAST(predicted_at AS DATE)") + " GROUP BY ALL ORDER BY 1, 2, 3"),
        {**filters.params(), "roles": _roles(roles)})
    frame["share"] = frame["n"] / frame.groupby(["day", "dataset"])["n"].transform("sum")
    return frame


def confidence_histogram(con: duckdb.DuckDBPyConnection, filters: Filters,
                         roles: Sequence[str]) -> pd.DataFrame:
    """Counts of predictions per confidence bucket ([0, 0.1), ... [0.9, 1]) and dataset."""
    return _frame(con, (
        f"SELECT dataset, least(floor(confidence * {CONFIDENCE_BUCKETS}), "
        f"{CONFIDENCE_BUCKETS - 1}) / {CONFIDENCE_BUCKETS} AS bucket, count(*) AS n"
        " FROM predictions WHERE confidence IS NOT NULL AND list_contains($roles, role)"
        " AND " + _scope("CAST(predicted_at AS DATE)") + " GROUP BY ALL ORDER BY 1, 2"),
        {**filters.params(), "roles": _roles(roles)})


def shadow_agreement(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Per day and dataset, how often the shadow model agrees with the served champion on
    the same records (pairs joined on request id and the record's inputs: one request may
    carry a list of records)."""
    return _frame(con, (
        "SELECT CAST(c.predicted_at AS DATE) AS day, c.dataset,"
        " s.model_version AS shadow_version, c.model_version AS served_version,"
        " count(*) AS pairs,"
        " avg(CASE WHEN s.predicted_class = c.predicted_class THEN 1.0 ELSE 0.0 END)"
        " AS agreement FROM predictions c JOIN predictions s"
        " ON s.request_id = c.request_id AND s.dataset = c.dataset"
        " AND CAST(s.inputs AS VARCHAR) = CAST(c.inputs AS VARCHAR)"
        " WHERE c.role = 'served' AND s.role = 'shadow' AND " +
        _scope("CAST(c.predicted_at AS DATE)", "c.dataset") + " GROUP BY ALL ORDER BY 1, 2"),
        filters.params())


@dataclass(frozen=True)
class Predictions:
    roles: pd.DataFrame
    daily: pd.DataFrame
    classes: pd.DataFrame
    confidence: pd.DataFrame
    agreement: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.daily.empty

    @property
    def total(self) -> int:
        return int(self.daily["predictions"].sum())

    @property
    def review_share(self) -> float:
        """Share flagged for review, over the predictions that say (batch rows do not)."""
        return _weighted(self.daily["review_share"], self.daily["predictions"])

    @property
    def mean_confidence(self) -> float:
        return _weighted(self.daily["mean_confidence"], self.daily["predictions"])

    @property
    def agreement_rate(self) -> float:
        """Shadow agreement over all pairs of the range (NaN when shadow mode is off)."""
        return _weighted(self.agreement["agreement"], self.agreement["pairs"])


def _weighted(values: pd.Series, weights: pd.Series) -> float:
    known = values.notna()
    total = float(weights[known].sum())
    return float((values[known] * weights[known]).sum() / total) if total else math.nan


def predictions(con: duckdb.DuckDBPyConnection, filters: Filters, roles: Sequence[str]
                ) -> Predictions:
    return Predictions(role_counts(con, filters), prediction_daily(con, filters, roles),
                       class_distribution(con, filters, roles),
                       confidence_histogram(con, filters, roles), shadow_agreement(con, filters))


# -------------------------------------------------------------------------------- alerts


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
    return _frame(con, (
        "SELECT created_at, severity, dataset, kind, message, status, delivered, closed_at,"
        " alert_id, details FROM alerts WHERE ($status::VARCHAR IS NULL OR status = $status)"
        " AND " + _scope("CAST(created_at AS DATE)", keep_global=True) +
        " ORDER BY created_at DESC, alert_id"), {**filters.params(), "status": status})

