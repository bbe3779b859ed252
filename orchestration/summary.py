"""What a night looks like to a reader: its rows of `DatasetNight`, rendered.

    night_summary_markdown  the Markdown table of a night (the nightly flow's Prefect artifact)
    summary_frame           the table the demo and `overnight night`/`backfill` print
    progress_line           one night and dataset on one line, as its stages finish

Only formatting: the night itself runs in `orchestration.night`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from orchestration.night import DatasetNight

STAGE_NAMES = {"ingest": "ingest", "monitor": "drift", "decide": "decide", "train": "train",
               "promote": "gate"}
MARKS = {"ok": "✓", "skipped": "-", "failed": "✗ failed"}


def night_summary_markdown(night: date, rows: list[DatasetNight]) -> str:
    """The Markdown summary of a night (a Prefect artifact, and what the demo prints)."""
    lines = [f"# overnight: night of {night.isoformat()}", "",
             "| dataset | batch | drift | accuracy | decision | challenger | gate | champion |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        drift = "n/a" if r.share_drifted is None else (
            f"{r.share_drifted:.0%}" + (" (dataset drift)" if r.dataset_drift else ""))
        accuracy = "n/a" if r.accuracy is None else f"{r.accuracy:.3f}"
        decision = "failed at " + r.failed_stage if r.failed_stage else (
            "retrain" if r.retrain else "keep") + f": {r.reason or ''}"
        report = f" [report]({Path(r.report).as_uri()})" if r.report else ""
        lines.append(f"| {r.dataset} | {r.batch_status or 'n/a'} | {drift}{report} | "
                     f"{accuracy} | {decision} | {r.challenger or ''} | {r.gate or ''} | "
                     f"{r.champion or ''} |")
    return "\n".join(lines) + "\n"


def summary_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The printed table: per night and dataset, drift, decision, champion, accuracy."""
    table = pd.DataFrame([{
        "night": r["night"], "dataset": r["dataset"],
        "batch": r["batch_status"] or "-",
        "drift": "-" if r["share_drifted"] is None else f"{r['share_drifted']:.0%}"
        + (" DRIFT" if r["dataset_drift"] else ""),
        "accuracy": "-" if r["accuracy"] is None else f"{r['accuracy']:.3f}",
        "decision": ("failed: " + r["failed_stage"]) if r["failed_stage"] else
        ("retrain" if r["retrain"] else "keep"),
        "why": (r["reason"] or "")[:60],
        "gate": "promoted" if r["promoted"] else ("refused" if r["gate"] else "-"),
        "champion": r["champion"] or "-",
    } for r in rows])
    return table


def _stage_cell(row: DatasetNight, stage: str, status: str) -> str:
    """One stage of a progress row: what it found when that says more than a tick."""
    name = STAGE_NAMES.get(stage, stage)
    if status != "ok":
        return f"{name} {MARKS.get(status, status)}"
    if stage == "ingest" and row.batch_status not in (None, "accepted"):
        return f"ingest ✓ {row.batch_status}"
    if stage == "monitor" and row.share_drifted is not None:
        return f"drift {row.share_drifted:.0%}{' DRIFT' if row.dataset_drift else ''} ✓"
    if stage == "decide":
        return "decide: " + ("retrain" if row.retrain else "keep")
    if stage == "train" and row.challenger:
        return f"train ✓ {row.challenger}"
    if stage == "promote":
        return "gate: " + ("promoted" if row.promoted else "refused")
    return f"{name} ✓"


def progress_line(row: DatasetNight, seconds: float | None = None, *,
                  done: bool = False) -> str:
    """A night and dataset on one line: its stages so far, then (once done) the champion and
    how long it took; a night found already done in the warehouse says so."""
    cells = [_stage_cell(row, stage, status) for stage, status in row.stages.items()]
    line = f"{row.night} {row.dataset:<10} " + "  ".join(cells)
    if done:
        line += f"  champion {row.champion or '-'}"
    if seconds is not None:
        line += f"  ({seconds:.0f} s)"
    elif done and (row.reason or "").endswith("(already done)"):
        line += "  (already done)"
    return line
