"""Markdown tables of report figures: numbers right-aligned, None as n/a, cells one line.

A module of its own so that every report section (the model report's and the text
insight's) renders tables the same way without importing one another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def fmt(value: Any) -> str:
    """A cell or inline value: floats to 3 decimals, None as n/a, everything else as text."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        return f"{value:.3f}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A Markdown pipe table of `rows` (numeric columns right-aligned; `fmt` for the cells)."""
    if not rows:
        return "_(empty)_"
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))

    def cell(value: Any) -> str:
        return fmt(value).replace("|", "\\|").replace("\n", " ")

    numeric = [
        all(_is_number(row.get(c)) or row.get(c) is None for row in rows) for c in columns
    ]
    lines = [
        "| " + " | ".join(cell(c) for c in columns) + " |",
        "|" + "|".join("---:" if right else ":---" for right in numeric) + "|",
    ]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
