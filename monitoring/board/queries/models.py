"""The models page's questions: training runs and their leaderboards (the `leaderboard`
report), the aliases and their history, the registered versions, and a version's readable
reports on disk."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from models.registry.versions import ALIASES
from monitoring.board.queries.sql import metric, report, run_sql

SIGNIFICANCE_LEVEL = 0.05
LEADERBOARD_COLUMNS = ("rank", "algorithm", "status", "score", "accuracy", "balanced_accuracy",
                       "f1_macro", "cv_mean", "cv_std", "fit_seconds", "p_value_vs_best", "error")


def training_runs(con: duckdb.DuckDBPyConnection, dataset: str) -> pd.DataFrame:
    return run_sql(con, (
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
    """A run's candidates, best first (the `leaderboard` report: rank, then algorithm):
    metrics, fit time, rank and significance."""
    frame = report(con, "leaderboard", run=run_id)[list(LEADERBOARD_COLUMNS)].copy()
    frame.insert(frame.columns.get_loc("p_value_vs_best") + 1, "significance",
                 [significance(p, r) for p, r in frame[["p_value_vs_best", "rank"]].itertuples(
                     index=False)])
    return frame


def aliases(con: duckdb.DuckDBPyConnection, dataset: str) -> pd.DataFrame:
    return run_sql(con, (
        "SELECT names.alias, a.model_version, m.algorithm, m.trained_at, a.updated_at, " +
        ", ".join(metric("m.metrics", n) for n in ("accuracy", "f1_macro")) +
        " FROM (SELECT unnest($names::VARCHAR[]) AS alias) names"
        " LEFT JOIN model_aliases a ON a.alias = names.alias AND a.dataset = $dataset"
        " LEFT JOIN model_versions m ON m.model_version = a.model_version"
        " ORDER BY list_position($names::VARCHAR[], names.alias)"),
        {"dataset": dataset, "names": list(ALIASES)})


def alias_history(con: duckdb.DuckDBPyConnection, dataset: str) -> pd.DataFrame:
    return run_sql(con, (
        "SELECT changed_at, alias, model_version, previous_version, reason, changed_by"
        " FROM alias_history WHERE dataset = $dataset ORDER BY change_id DESC"),
        {"dataset": dataset})


def versions(con: duckdb.DuckDBPyConnection, dataset: str) -> pd.DataFrame:
    return run_sql(con, (
        "SELECT model_version, version, algorithm, trained_at, run_id, " + ", ".join(
            metric("metrics", n) for n in ("accuracy", "f1_macro", "balanced_accuracy")) +
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
