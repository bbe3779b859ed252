"""The model report's "Conformal review" section: what the review rule buys, in figures.

Why a section of its own: the old rule (confidence below the dataset's threshold) and the
conformal rule (prediction set of more than one class, or none) flag different rows; an
analyst choosing between them needs both on the same held-out rows: the share each sends to a
person, the error left among the rows the model answers alone, and for the conformal sets the
coverage achieved against the one promised, with its sampling interval.
"""

from __future__ import annotations

import html
from typing import Any

from models.evaluation.conformal import ConformalReview


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _cell(text: str) -> str:
    """A class name as table text (a user's spec names classes: no markup, no pipes)."""
    return html.escape(str(text)).replace("|", "\\|").replace("\n", " ")


def conformal_section(review: ConformalReview) -> str:
    """Markdown of the section (figures from `conformal.held_out_figures`)."""
    f: dict[str, Any] = review.figures
    old = f"confidence below {f['old_threshold']:g} (old rule)"
    rows = [("| review rule | share flagged | error among unflagged | coverage (95% interval)"
             " | average set size |"), "| --- | --- | --- | --- | --- |"]
    if "coverage" in f:
        rows.append(
            f"| set of 0 or 2+ classes at error rate {f['error_rate']:g} "
            f"| {_percent(f['share_flagged'])} | {_percent(f['error_unflagged'])} "
            f"| {_percent(f['coverage'])} ({_percent(f['coverage_low'])} to "
            f"{_percent(f['coverage_high'])}) | {f['mean_set_size']:.2f} |")
    rows.append(f"| {old} | {_percent(f['old_share_flagged'])} "
                f"| {_percent(f['old_error_unflagged'])} | n/a | n/a |")
    text = [f"## Conformal review\n\n{review.note}."]
    if "coverage" in f:
        target = f["target_coverage"]
        within = f["coverage_low"] <= target <= f["coverage_high"] or f["coverage"] >= target
        text.append(
            f"On {f['n_rows']} held-out rows, the prediction sets held the true class of "
            f"{_percent(f['coverage'])} of them for a promised {_percent(target)} "
            f"({'within' if within else 'below'} sampling error); the average set holds "
            f"{f['mean_set_size']:.2f} classes and {_percent(f['share_empty'])} are empty. "
            f"A prediction needs review when its set holds more than one class or none "
            f"(or not the predicted class).")
    text.append("\n".join(rows))
    per_class = f.get("per_class") or {}
    if per_class:
        lines = ["| class | held-out rows | coverage |", "| --- | --- | --- |"]
        lines += [f"| {_cell(name)} | {v['rows']} | {_percent(v['coverage'])} |"
                  for name, v in per_class.items()]
        text.append("Coverage is promised on average over rows, not for each class: a rare "
                    "class can be covered less often than the others.\n\n" + "\n".join(lines))
    return "\n\n".join(text)
