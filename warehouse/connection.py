"""Short-lived DuckDB connections that wait politely for the file lock.

DuckDB lets one process at a time open a database file for writing, and while a writer holds
it, no other process can open it at all, not even read-only. So every unit of work opens a
connection, does its work and closes it; when the file is locked, the helper retries with
exponential back-off (tenacity) until `timeout` and then raises `WarehouseLockedError`, which
names the file and the process holding it.

`connect_sandbox` is the connection for SQL that a user wrote (`overnight query`, named
reports): read-only, with DuckDB's external access off and its configuration locked before
any of the user's text runs, so it cannot read or write files, attach databases, load
extensions or undo those settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from warehouse.errors import OvernightError
from warehouse.settings import get_settings


class WarehouseError(OvernightError):
    """A problem with the warehouse that a user can act on (message says what and where)."""


class WarehouseLockedError(WarehouseError):
    """Another process held the warehouse file for longer than we were willing to wait."""

    def __init__(self, path: Path, holder: str, waited: float) -> None:
        self.path = path
        self.holder = holder
        self.waited = waited
        super().__init__(
            f"warehouse {path} is locked by {holder}; gave up after waiting {waited:.1f} s "
            "(raise OVERNIGHT_LOCK_TIMEOUT_SECONDS or stop the other process)"
        )


_HOLDER = re.compile(r"Conflicting lock is held in (?P<holder>.+?)(?:\. See also|$)")


def _is_lock_conflict(error: BaseException) -> bool:
    return isinstance(error, duckdb.IOException) and "Could not set lock" in str(error)


def lock_holder(error: BaseException) -> str:
    """The process named in DuckDB's lock error, e.g. '/usr/bin/python3 (PID 1234)'."""
    match = _HOLDER.search(str(error))
    return match.group("holder") if match else "another process"


def open_connection(
    path: Path | str | None = None,
    *,
    read_only: bool = False,
    timeout: float | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open a connection, retrying while another process holds the lock.

    A read-only open of a file that does not exist yet is refused with a clear message rather
    than DuckDB's generic one, since it almost always means `overnight warehouse init` was not run.
    """
    settings = get_settings()
    db_path = Path(path) if path is not None else settings.warehouse_path
    wait = settings.lock_timeout_seconds if timeout is None else timeout
    if read_only and not db_path.exists():
        raise WarehouseError(
            f"warehouse {db_path} does not exist yet; run `overnight warehouse init` first"
        )
    db_path.parent.mkdir(parents=True, exist_ok=True)
    retrying = Retrying(
        retry=retry_if_exception(_is_lock_conflict),
        wait=wait_random_exponential(multiplier=0.05, max=1.0),
        stop=stop_after_delay(wait),
        reraise=False,
    )
    try:
        for attempt in retrying:
            with attempt:
                return duckdb.connect(str(db_path), read_only=read_only)
    except RetryError as exhausted:
        last = exhausted.last_attempt.exception()
        raise WarehouseLockedError(db_path, lock_holder(last) if last else "?", wait) from last
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover


@contextmanager
def connect(
    path: Path | str | None = None,
    *,
    read_only: bool = False,
    timeout: float | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for one unit of work; closed (and the lock released) on exit."""
    con = open_connection(path, read_only=read_only, timeout=timeout)
    try:
        yield con
    finally:
        con.close()


# Order matters: `lock_configuration` must come last, since it freezes every setting,
# including the ones before it (and refuses any later SET, RESET or PRAGMA that changes one).
SANDBOX_SETTINGS = (
    "SET enable_external_access = false",   # no file or network access: COPY, read_*, ATTACH
    "SET allow_community_extensions = false",
    "SET autoload_known_extensions = false",
    "SET autoinstall_known_extensions = false",
    "SET lock_configuration = true",
)


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """Turn an open connection into a sandbox: only the already-open database is reachable."""
    for statement in SANDBOX_SETTINGS:
        con.execute(statement)


@contextmanager
def connect_sandbox(
    path: Path | str | None = None, *, timeout: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection locked down before it is handed out (for users' SQL)."""
    with connect(path, read_only=True, timeout=timeout) as con:
        lock_down(con)
        yield con


@contextmanager
def transaction(
    path: Path | str | None = None, *, timeout: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writing connection inside one transaction: all of it lands, or none of it does."""
    with connect(path, timeout=timeout) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
