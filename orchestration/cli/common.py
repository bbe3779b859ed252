"""What every command module of `overnight` shares: the error console, the `--format`
option, creating the warehouse on first use, and pointing Prefect at the data home.

Kept apart from `orchestration.cli` (which assembles the app from the command modules) so
that the command modules import it without importing each other.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

from orchestration.cli.output import OutputFormat
from warehouse import connect, get_settings, migrate

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


def use_local_prefect() -> None:
    """Prefect's local API and state under the data home, unless the user chose a server."""
    from orchestration.prefect_env import prefect_home

    for key, value in prefect_home(get_settings().home).items():
        os.environ.setdefault(key, value)
