"""The `overnight` command line: thin commands that parse options and call plain functions.

User mistakes (bad SQL, unknown report, a locked warehouse...) are printed as one line on
standard error with a non-zero exit, never as a traceback.

One module per area, each with its own `commands` (merged here, in the order `--help` lists
them) and the groups of its area:

    nights      demo, nightly, backfill, simulate
    data        generate, ingest, datasets (reset-spec)
    training    train, validate, promote, rollback, registry (sign)
    serving     serve, predict, collect
    explaining  explain (SHAP of a logged prediction, the clinician's report)
    monitoring  alerts, close-alert, ab, board
    warehouse   query, report, warehouse (init, status)
    common      what they share: the error console, --format, init_warehouse, use_local_prefect
    output      result tables for people (rich) or programs (csv, json)

`main` is the console entry point (`overnight = "orchestration.cli:main"`).
"""

from __future__ import annotations

import sys

import duckdb
import typer

from orchestration.cli import data, explaining, monitoring, nights, serving, training, warehouse
from orchestration.cli.common import err, use_local_prefect
from orchestration.cli.training import train_next_steps
from warehouse import OvernightError

__all__ = ["app", "main", "train_next_steps", "use_local_prefect"]

app = typer.Typer(
    help="overnight: a scheduled batch MLOps platform (nightly data, drift, retraining, serving).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for _area in (nights, data, training, serving, explaining, monitoring, warehouse):
    app.add_typer(_area.commands)


def main() -> None:
    """Console entry point: run the app, turning user errors into one line and exit 1."""
    try:
        app()
    except (OvernightError, duckdb.Error) as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(1)
