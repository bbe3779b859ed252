"""Printing result tables for people (rich) or for programs (csv, json): the `--format` of
the `overnight` commands."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_frame(frame: pd.DataFrame, fmt: OutputFormat, title: str | None = None) -> None:
    """Print a result frame in the requested format on standard output."""
    if fmt is OutputFormat.csv:
        frame.to_csv(sys.stdout, index=False)
    elif fmt is OutputFormat.json:
        # pandas rounds to 10 significant digits by default; 15 keeps what the warehouse holds
        # (a consumer comparing with the board or DuckDB must see the same figure)
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", default_handler=str,
                                       double_precision=15))
        sys.stdout.write("\n")
    else:
        table = Table(title=title, show_lines=False)
        for column in frame.columns:
            table.add_column(str(column), overflow="fold")
        for row in frame.itertuples(index=False):
            table.add_row(*(_cell(v) for v in row))
        Console(width=max(160, Console().width)).print(table)
        if frame.empty:
            print("(no rows)")
