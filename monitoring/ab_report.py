"""A/B verdicts over the warehouse: the named reports' counts (`ab_shadow`, `ab_canary` in
`warehouse.reports`, the same questions `overnight report` asks) turned into verdicts with
each dataset's policy (`ab_alpha`, `ab_power`, `ab_min_effect` in `monitoring/policies.yaml`),
and the per-dataset A/B report, Markdown and HTML under `reports/ab/<dataset>/<date>.*`.

Why here and not in the board: the board's A/B page, the report file and the validation gate
(a significant shadow win is evidence for promotion) read the same verdicts, computed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from models.reports.model_report import markdown_table, render_html
from monitoring.ab_verdict import (
    ArmCounts,
    CanaryVerdict,
    PairedCounts,
    ShadowVerdict,
    canary_verdict,
    shadow_verdict,
)
from monitoring.policy import RetrainingPolicy, load_policies, policy_for
from warehouse import connect, get_settings
from warehouse.errors import OvernightError
from warehouse.reports import run_report


class UnknownDatasetError(OvernightError):
    """An A/B report asked of a dataset the warehouse does not know."""

SHADOW_SHOWN = ("champion", "challenger", "pairs", "agreement", "labelled",
                "champion_accuracy", "challenger_accuracy", "champion_only",
                "challenger_only", "method", "p_value", "winner", "labels_needed")
CANARY_SHOWN = ("champion", "challenger", "champion_labelled", "challenger_labelled",
                "champion_accuracy", "challenger_accuracy", "difference", "ci_low", "ci_high",
                "p_value", "winner", "more_champion", "more_challenger")


def _period(start: date | None, end: date | None) -> dict[str, Any]:
    return {"start": start, "end": end}


def _policies(datasets: pd.Series) -> dict[str, RetrainingPolicy]:
    policies = load_policies()
    return {d: policy_for(d, policies) for d in set(datasets)}


def paired_counts(row: Any) -> PairedCounts:
    return PairedCounts(int(row.both_right), int(row.champion_only), int(row.challenger_only),
                        int(row.both_wrong), pairs=int(row.pairs), agreeing=int(row.agreeing))


def shadow_verdicts(con: duckdb.DuckDBPyConnection, dataset: str | None = None,
                    start: date | None = None, end: date | None = None) -> pd.DataFrame:
    """One row per dataset and shadow pair: the `ab_shadow` counts and the verdict's
    figures (and its sentence), with the dataset's policy."""
    counts = run_report(con, "ab_shadow", {"dataset": dataset, **_period(start, end)})
    policies = _policies(counts["dataset"])
    verdicts = []
    for row in counts.itertuples(index=False):
        policy = policies[row.dataset]
        verdict = shadow_verdict(paired_counts(row), alpha=policy.ab_alpha,
                                 power=policy.ab_power, min_effect=policy.ab_min_effect)
        verdicts.append({**verdict.as_dict(), "verdict": verdict.sentence()})
    extra = pd.DataFrame(verdicts, columns=[*ShadowVerdict.__dataclass_fields__, "verdict"])
    keep = [c for c in counts.columns if c not in extra.columns]
    return pd.concat([counts[keep].reset_index(drop=True), extra], axis=1)


def canary_verdicts(con: duckdb.DuckDBPyConnection, dataset: str | None = None,
                    start: date | None = None, end: date | None = None) -> pd.DataFrame:
    """One row per dataset and canary pair: the `ab_canary` counts and the verdict."""
    counts = run_report(con, "ab_canary", {"dataset": dataset, **_period(start, end)})
    policies = _policies(counts["dataset"])
    verdicts = []
    for row in counts.itertuples(index=False):
        policy = policies[row.dataset]
        verdict = canary_verdict(
            ArmCounts(int(row.champion_labelled), int(row.champion_correct)),
            ArmCounts(int(row.challenger_labelled), int(row.challenger_correct)),
            alpha=policy.ab_alpha, power=policy.ab_power, min_effect=policy.ab_min_effect)
        verdicts.append({**verdict.as_dict(), "verdict": verdict.sentence()})
    extra = pd.DataFrame(verdicts, columns=[*CanaryVerdict.__dataclass_fields__, "verdict"])
    keep = [c for c in counts.columns if c not in extra.columns]
    return pd.concat([counts[keep].reset_index(drop=True), extra], axis=1)


def shadow_evidence(dataset: str, champion: str, challenger: str,
                    policy: RetrainingPolicy | None = None) -> ShadowVerdict | None:
    """The shadow verdict of exactly this champion and challenger (None: no shadow pair),
    for the validation gate."""
    with connect(read_only=True) as con:
        counts = run_report(con, "ab_shadow", {"dataset": dataset, **_period(None, None)})
    mine = counts[(counts["champion"] == champion) & (counts["challenger"] == challenger)]
    if mine.empty:
        return None
    policy = policy or policy_for(dataset)
    return shadow_verdict(paired_counts(next(mine.itertuples(index=False))),
                          alpha=policy.ab_alpha, power=policy.ab_power,
                          min_effect=policy.ab_min_effect)


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class ABReport:
    dataset: str
    markdown_path: Path
    html_path: Path
    shadow: pd.DataFrame
    canary: pd.DataFrame


def _rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{c: (None if pd.isna(v) else v) for c, v in row.items()}
            for row in frame[list(columns)].to_dict(orient="records")]


def report_text(dataset: str, shadow: pd.DataFrame, canary: pd.DataFrame,
                policy: RetrainingPolicy, made_at: datetime) -> str:
    """The A/B report of one dataset as Markdown: one section per design, a verdict line per
    champion / challenger pair, then the table of figures."""
    parts = [f"# A/B verdicts of {dataset}",
             f"Made {made_at:%Y-%m-%d %H:%M} UTC from served predictions joined to the labels "
             f"sent to `/v1/feedback`. Policy: alpha {policy.ab_alpha:g}, power "
             f"{policy.ab_power:g}, smallest difference worth detecting "
             f"{policy.ab_min_effect:g} (`monitoring/policies.yaml`).",
             "## Shadow (paired: both models on the same requests)",
             "McNemar's test on the labelled pairs where exactly one model was right (exact "
             "binomial under 25 such pairs, chi-square with continuity correction above); "
             "agreement is over every pair. Labels needed: Connor's sample size for McNemar."]
    if shadow.empty:
        parts.append("_No shadow pair: shadow mode was off, or no request reached it._")
    else:
        parts += [f"- **{r['challenger']} vs {r['champion']}**: {r['verdict']}"
                  for r in shadow.to_dict(orient="records")]
        parts.append(markdown_table(_rows(shadow, SHADOW_SHOWN), SHADOW_SHOWN))
    parts += ["## Canary (two arms: a share of requests answered by the challenger)",
              "Labelled accuracy of each arm over the canary's period, pooled two-proportion "
              "z-test, Newcombe's hybrid score interval of the difference (challenger - "
              "champion) at confidence 1 - alpha, and the labels per arm that would decide "
              "it at the policy's power."]
    if canary.empty:
        parts.append("_No canary: the challenger answered no request._")
    else:
        parts += [f"- **{r['challenger']} vs {r['champion'] or '(no champion answer)'}**: "
                  f"{r['verdict']}" for r in canary.to_dict(orient="records")]
        parts.append(markdown_table(_rows(canary, CANARY_SHOWN), CANARY_SHOWN))
    return "\n\n".join(parts) + "\n"


def report_path(dataset: str, day: date) -> Path:
    return get_settings().reports_dir / "ab" / dataset / f"{day.isoformat()}.md"


def write_ab_report(dataset: str, day: date | None = None) -> ABReport:
    """Compute the dataset's A/B verdicts and write its report (Markdown and HTML)."""
    made_at = datetime.now(UTC).replace(tzinfo=None)
    day = day or made_at.date()
    with connect(read_only=True) as con:
        known = [r[0] for r in con.execute(
            "SELECT DISTINCT dataset FROM (SELECT dataset FROM datasets UNION ALL"
            " SELECT dataset FROM predictions) ORDER BY dataset").fetchall()]
        if dataset not in known:     # also keeps a stranger's text out of the report's path
            raise UnknownDatasetError(f"unknown dataset {dataset[:60]!r}; known: "
                                      f"{', '.join(known) or 'none'}")
        shadow = shadow_verdicts(con, dataset)
        canary = canary_verdicts(con, dataset)
    text = report_text(dataset, shadow, canary, policy_for(dataset), made_at)
    path = report_path(dataset, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    html_path = path.with_suffix(".html")
    html_path.write_text(render_html(text, f"A/B verdicts of {dataset}"), encoding="utf-8")
    return ABReport(dataset, path, html_path, shadow, canary)
