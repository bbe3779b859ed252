"""How the status board opens the warehouse: briefly, read-only, and never in a writer's way.

Why a module of its own: every page reads through it, and the rule it keeps is the one the
nightly loop depends on. DuckDB lets no other process open the file, not even read-only,
while a writer holds it, and a reader that lingers would in turn block the nightly writer.
So each loader opens one read-only connection (`reading`), runs its queries, closes it, and
returns frames; while a writer holds the file it retries for `BUSY_WAIT_SECONDS` only (not the
writers' minute) and then raises `WarehouseBusy`, which the board shows as a message and
retries later. A data home without a warehouse (or with an empty one) is `NoWarehouse`: the
board shows the first-run command instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from warehouse import OvernightError, WarehouseLockedError, current_version
from warehouse.connection import open_connection
from warehouse.settings import get_settings

BUSY_WAIT_SECONDS = 3.0
BUSY_MESSAGE = "The warehouse is busy: the nightly run is writing; retrying shortly."
FIRST_RUN_COMMAND = "overnight demo"
SCHEMA_VERSION = 2          # the board reads the tables of migration 1 and the views of 2

T = TypeVar("T")


class BoardUnavailable(OvernightError):
    """The board cannot read the warehouse right now; the message says why and what to do."""


class WarehouseBusy(BoardUnavailable):
    """A writer (the nightly run, a training, an ingest) held the file longer than we wait."""

    def __init__(self, path: Path, holder: str, waited: float) -> None:
        self.path, self.holder, self.waited = path, holder, waited
        super().__init__(f"{BUSY_MESSAGE} ({path} held by {holder}; waited {waited:.0f} s)")


class NoWarehouse(BoardUnavailable):
    """No warehouse yet in this data home, or one whose schema was never created."""


def first_run_message(home: Path) -> str:
    """What a new user should do: the one command that fills a data home with a week."""
    return (f"No nights recorded yet in {home}. Run `{FIRST_RUN_COMMAND}` to simulate a week "
            "of nights for the built-in datasets (or `overnight nightly` for tonight), then "
            "reload this page.")


def warehouse_file(path: Path | str | None = None) -> Path:
    return Path(path) if path is not None else get_settings().warehouse_path


@contextmanager
def reading(path: Path | str | None = None, wait: float = BUSY_WAIT_SECONDS
            ) -> Iterator[duckdb.DuckDBPyConnection]:
    """One short read-only connection; `WarehouseBusy` when a writer holds it past `wait`."""
    db = warehouse_file(path)
    if not db.exists():
        raise NoWarehouse(first_run_message(db.parent))
    try:
        con = open_connection(db, read_only=True, timeout=wait)
    except WarehouseLockedError as error:
        raise WarehouseBusy(db, error.holder, error.waited) from error
    try:
        if current_version(con) < SCHEMA_VERSION:
            raise NoWarehouse(first_run_message(db.parent))
        yield con
    finally:
        con.close()


def read(query: Callable[..., T], *args: Any, path: Path | str | None = None) -> T:
    """Run one query function (`query(con, *args)`) on its own short read-only connection."""
    with reading(path) as con:
        return query(con, *args)


def is_free(path: Path | str | None = None) -> bool:
    """Whether a reader can open the warehouse this instant (no writer holds it)."""
    try:
        with reading(path, wait=0.1):
            return True
    except WarehouseBusy:
        return False
    except NoWarehouse:
        return True
