"""`overnight warehouse init|status`, `overnight query` and `overnight report`: creating the
warehouse and reading it (queries and named reports run in the read-only sandbox)."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import typer

from orchestration.cli.common import FormatOption, init_warehouse, print_locations
from orchestration.cli.output import OutputFormat, print_frame
from warehouse import OvernightError, connect, get_settings
from warehouse.connection import connect_sandbox
from warehouse.reports import REPORTS, run_query, run_report, warehouse_status

commands = typer.Typer()
warehouse_app = typer.Typer(help="Create and inspect the DuckDB warehouse.", no_args_is_help=True)


@commands.command()
def query(
    sql: Annotated[str, typer.Argument(help="One read-only SQL statement (sandboxed).")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Run one read-only SQL statement (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) on the
    warehouse, in a sandbox without file access, and print its result."""
    with connect_sandbox() as con:
        frame = run_query(con, sql)
    print_frame(frame, fmt)


@commands.command()
def report(
    name: Annotated[str, typer.Argument(help="Report name; `overnight report list` lists them.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Report parameter as key=value (repeatable)."),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Print a named report (leaderboard, drift_trend, lineage...); `list` shows them all."""
    if name == "list":
        frame = pd.DataFrame(
            [{"report": r.name, "parameters": ", ".join(r.params), "what": r.description}
             for r in REPORTS.values()]
        )
        print_frame(frame, fmt)
        return
    params = report_params(param or [])
    with connect_sandbox() as con:
        frame = run_report(con, name, params)
    print_frame(frame, fmt, title=name)


def report_params(items: list[str]) -> dict[str, str]:
    """`--param key=value` options as a dict (a malformed one is a user error)."""
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OvernightError(f"report parameter {item!r} is not of the form key=value")
        params[key.strip()] = value
    return params


@warehouse_app.command("init")
def warehouse_init() -> None:
    """Create the warehouse (or bring its schema up to date) and the data home folders."""
    applied = init_warehouse()
    print(f"applied migrations: {', '.join(applied)}" if applied else "schema already up to date")
    print_locations()


@warehouse_app.command("status")
def warehouse_status_command(fmt: FormatOption = OutputFormat.table) -> None:
    """Show the schema version, the tables and their row counts."""
    with connect(read_only=True) as con:
        status = warehouse_status(con)
    frame = pd.DataFrame(
        {"table": list(status["tables"]), "rows": list(status["tables"].values())}
    )
    if fmt is OutputFormat.table:
        print(f"warehouse {get_settings().warehouse_path}")
        print(f"schema version {status['schema_version']}")
    print_frame(frame, fmt)


commands.add_typer(warehouse_app, name="warehouse")
