"""The production report of a training run, and the reference data kept with a model.

The model report (`models.reports.model_report`) explains a model; this one is for whoever deploys
and
watches it: an executive summary, the technical specification, deployment notes and the
monitoring configuration (reference data, thresholds), written as Markdown and HTML.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from models.data.spec import DatasetSpec
from models.registry.artifacts import REFERENCE_FILE
from models.reports.safe_html import markdown_html

REFERENCE_ROWS = 5_000


def save_reference(frame: pd.DataFrame, spec: DatasetSpec, path: Path, *,
                   seed: int = 0) -> Path:
    """A bounded sample of the training rows (features and target) for nightly drift checks."""
    columns = [*spec.feature_names, spec.target]
    sample = frame[columns]
    if len(sample) > REFERENCE_ROWS:
        sample = sample.sample(REFERENCE_ROWS, random_state=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    sample.reset_index(drop=True).to_parquet(path, index=False)
    return path


def save_holdout(x_test: pd.DataFrame, y_test: pd.Series, spec: DatasetSpec,
                 path: Path) -> Path:
    """The run's held-out rows (never trained on), for the validation gate."""
    frame = x_test.reset_index(drop=True).copy()
    frame[spec.target] = y_test.reset_index(drop=True).to_numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def production_report(*, spec: DatasetSpec, winner: dict[str, Any],
                      leaderboard: list[dict[str, Any]], failures: list[dict[str, Any]],
                      significance: list[dict[str, Any]], recommendation: str,
                      run: dict[str, Any], out_dir: Path) -> Path:
    """Write production.md and production.html for a training run; return the HTML path."""
    metrics = winner["metrics"]
    rare = [c for c, s in (spec.class_shares or {}).items() if s < 0.15]
    lines = [
        f"# Production report: {spec.name}, run {run['pathspec']}",
        "",
        "## Executive summary",
        f"The best of {len(leaderboard)} candidates is **{winner['name']}** with accuracy "
        f"{metrics['accuracy']:.3f} and macro F1 {metrics['f1_macro']:.3f} on "
        f"{metrics['n']} held-out rows. It is registered as a challenger; the validation "
        "gate decides whether it replaces the champion."
        + (f" {len(failures)} candidate(s) failed and were skipped." if failures else ""),
        "",
        "## Leaderboard",
        "| rank | candidate | score | accuracy | macro F1 | fit s |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {r['rank'] or 'baseline'} | {r['name']} | {_fmt(r['score'])} | "
          f"{_fmt(r['accuracy'])} | {_fmt(r['f1_macro'])} | {_fmt(r['fit_seconds'])} |"
          for r in leaderboard],
        "",
        "## Significance of the winner against the others",
        "| other | corrected t-test p | McNemar p | winner significantly better |",
        "| --- | --- | --- | --- |",
        *[f"| {s['other']} | {_fmt(s['ttest_p'])} | {_fmt(s['mcnemar_p'])} | "
          f"{s['significant']} |" for s in significance],
        "",
        f"Ensemble recommendation: {recommendation}",
        "",
        "## Technical specification",
        f"- algorithm: {winner['algorithm']}; imbalance handling: {winner['imbalance']}",
        f"- parameters: `{json.dumps(winner['params'], default=str)}`",
        f"- input: {len(spec.features)} features "
        f"({', '.join(f'{f.name} ({f.type})' for f in spec.features)})",
        f"- classes: {', '.join(spec.classes)}",
        f"- training batches: {', '.join(run['training_batches'])}",
        f"- rows: {run['n_train']} training, {run['n_test']} held out; seed {run['seed']}",
        "",
        "## Deployment notes",
        "- The artifact is one scikit-learn / imbalanced-learn pipeline with its preprocessing;",
        "  serving loads it only after checking its sha256 against the registry.",
        f"- Predictions below confidence {spec.confidence_threshold} are flagged for review "
        f"(review share on the held-out data: {_fmt(metrics.get('review_share'))}).",
        "- Promotion to champion goes through `overnight promote` or the nightly gate; "
        "`overnight rollback` restores the previous champion.",
        "",
        "## Monitoring configuration",
        f"- reference data: `{REFERENCE_FILE}` beside the artifact (up to {REFERENCE_ROWS} "
        "training rows) for the nightly drift report.",
        f"- expected accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['f1_macro']:.3f}; "
        "alert when a night's labelled accuracy falls clearly below.",
        *([f"- rare classes to watch: {', '.join(rare)} (per-class recall: "
           + ", ".join(f"{c} {metrics['per_class'][c]['recall']:.2f}" for c in rare) + ")"]
          if rare else []),
    ]
    if failures:
        lines += ["", "## Failed candidates",
                  *[f"- {f['algorithm']}: {f['error']}" for f in failures]]
    text = "\n".join(lines) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "production.md").write_text(text)
    html = markdown_html(text)
    path = out_dir / "production.html"
    path.write_text(f"<!doctype html><meta charset='utf-8'><title>{spec.name} production"
                    f"</title><body style='font-family:sans-serif;max-width:60em'>{html}</body>")
    return path
