"""The `overnight` command line: thin commands that parse options and call plain functions.

User mistakes (bad SQL, unknown report, a locked warehouse...) are printed as one line on
standard error with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import duckdb
import pandas as pd
import typer
from rich.console import Console

from orchestration.output import OutputFormat, print_frame
from warehouse import OvernightError, connect, get_settings, migrate
from warehouse.reports import REPORTS, run_report, warehouse_status

app = typer.Typer(
    help="overnight: a scheduled batch MLOps platform (nightly data, drift, retraining, serving).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
warehouse_app = typer.Typer(help="Create and inspect the DuckDB warehouse.", no_args_is_help=True)
app.add_typer(warehouse_app, name="warehouse")

err = Console(stderr=True, soft_wrap=True)

FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="How to print results.")
]


def init_warehouse() -> list[str]:
    """Create the data home folders and apply pending migrations; return what was applied."""
    settings = get_settings()
    settings.ensure_dirs()
    with connect() as con:
        return [f"{m.version}: {m.name}" for m in migrate(con)]


def print_locations() -> None:
    for name, path in get_settings().locations().items():
        print(f"  {name:<10} {path}")


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


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="A SQL query, run on a read-only connection.")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Run one read-only SQL query against the warehouse and print its result."""
    with connect(read_only=True) as con:
        frame = con.execute(sql).df()
    print_frame(frame, fmt)


@app.command()
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
    params: dict[str, str] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OvernightError(f"report parameter {item!r} is not of the form key=value")
        params[key.strip()] = value
    with connect(read_only=True) as con:
        frame = run_report(con, name, params)
    print_frame(frame, fmt, title=name)


@app.command()
def demo() -> None:
    """Run the main job on embedded defaults (for now: set up the warehouse and say where)."""
    applied = init_warehouse()
    print("overnight demo")
    print(f"  migrations applied now: {', '.join(applied) or 'none (already up to date)'}")
    print_locations()
    with connect(read_only=True) as con:
        status = warehouse_status(con)
    print(f"  schema version {status['schema_version']}, {len(status['tables'])} tables")


def main() -> None:
    """Console entry point: run the app, turning user errors into one line and exit 1."""
    try:
        app()
    except OvernightError as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)
    except duckdb.Error as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)
