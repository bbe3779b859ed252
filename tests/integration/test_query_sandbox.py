"""`overnight query` and named reports run in a sandbox: one read statement, no file access.

Every refused class is run as a user runs it (the real `overnight` process on a real DuckDB
file): exit code 1, one line on standard error that says what is allowed, and nothing written
anywhere (no canary file, the warehouse's bytes, mtime and rows unchanged). A second test
bypasses our statement check to show that DuckDB's own settings refuse the same things.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from warehouse import connect, get_settings, migrate
from warehouse.connection import connect_sandbox
from warehouse.reports import REPORTS, QueryRefusedError, run_query, run_report


@pytest.fixture(scope="module")
def sandbox_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A migrated warehouse with one batch row, plus files outside it that a query could touch."""
    root = tmp_path_factory.mktemp("sandbox")
    home = root / "home"
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("a,b\n1,2\n")
    with duckdb.connect(str(outside / "other.duckdb")) as other:
        other.execute("CREATE TABLE o AS SELECT 1 AS x")
        other.execute("COPY o TO '" + str(outside / "secret.parquet") + "' (FORMAT parquet)")
    old = os.environ.get("OVERNIGHT_HOME")
    os.environ["OVERNIGHT_HOME"] = str(home)
    try:
        get_settings().ensure_dirs()
        with connect() as con:
            migrate(con)
            con.execute("INSERT INTO batches VALUES ('b1', 'customer', DATE '2026-01-01',"
                        " 'generator', 'stable', 1, 10, 10, 'accepted', NULL, NULL, NULL, NULL,"
                        " now())")
        yield root
    finally:
        if old is None:
            os.environ.pop("OVERNIGHT_HOME", None)
        else:
            os.environ["OVERNIGHT_HOME"] = old


def overnight(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("overnight") or str(Path(sys.executable).parent / "overnight")
    env = {**os.environ, "OVERNIGHT_HOME": str(root / "home")}
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, env=env)


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under the test's root: size, mtime and content hash."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns,
                                       hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


def rows(root: Path) -> int:
    con = duckdb.connect(str(root / "home" / "warehouse.duckdb"), read_only=True)
    try:
        found = con.execute("SELECT count(*) FROM batches").fetchone()
        return int(found[0]) if found else -1
    finally:
        con.close()


# {outside} and {warehouse} are filled in per test; canary paths must never appear.
REFUSED = {
    "copy_to": "COPY (SELECT 1) TO '{outside}/canary.csv'",
    "copy_table_to": "COPY batches TO '{outside}/canary.parquet' (FORMAT parquet)",
    "read_text": "SELECT * FROM read_text('{outside}/secret.csv')",
    "read_csv": "SELECT * FROM read_csv('{outside}/secret.csv')",
    "read_parquet": "SELECT * FROM read_parquet('{outside}/secret.parquet')",
    "replacement_scan": "SELECT * FROM '{outside}/secret.csv'",
    "glob": "SELECT * FROM glob('{outside}/*')",
    "describe_file": "DESCRIBE SELECT * FROM '{outside}/secret.parquet'",
    "summarize_file": "SUMMARIZE SELECT * FROM read_csv('{outside}/secret.csv')",
    "attach": "ATTACH '{outside}/other.duckdb' AS o",
    "attach_new_file": "ATTACH '{outside}/canary.duckdb' AS c",
    "multi_statement": "SELECT 1; COPY (SELECT 1) TO '{outside}/canary.csv'",
    "detach_reattach_write": "ATTACH ':memory:' AS m; USE m; DETACH warehouse;"
                             " ATTACH '{warehouse}' AS w; DELETE FROM w.batches",
    "set": "SET enable_external_access = true",
    "reset": "RESET lock_configuration",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "pragma": "PRAGMA enable_profiling",
    "export_database": "EXPORT DATABASE '{outside}/canary_export'",
    "call_database_size": "CALL pragma_database_size()",
    "call_read_csv": "CALL read_csv('{outside}/secret.csv')",
    "pragma_profile_output": "PRAGMA profile_output = '{outside}/canary.txt'",
    "explain_analyze_copy": "EXPLAIN ANALYZE COPY (SELECT 1) TO '{outside}/canary.csv'",
    "delete": "DELETE FROM batches",
    "create_temp": "CREATE TEMP TABLE t AS SELECT 1",
}


# The real `overnight` process for these (about 1 s each); the rest through the same entry
# point in this process, which is what keeps this file fast.
AS_A_PROCESS = {"copy_to", "read_csv", "attach", "multi_statement", "detach_reattach_write",
                "install"}


def run_cli(root: Path, name: str, sql: str, capsys: pytest.CaptureFixture[str]
            ) -> tuple[int, str, str]:
    if name in AS_A_PROCESS:
        out = overnight(root, "query", sql, "-f", "csv")
        return out.returncode, out.stdout, out.stderr
    from orchestration.cli import main

    capsys.readouterr()
    argv = sys.argv
    sys.argv = ["overnight", "query", sql, "-f", "csv"]
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_class_writes_nothing(sandbox_home: Path, name: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    sql = REFUSED[name].format(outside=sandbox_home / "outside",
                               warehouse=sandbox_home / "home" / "warehouse.duckdb")
    before, count = snapshot(sandbox_home), rows(sandbox_home)
    code, stdout, stderr = run_cli(sandbox_home, name, sql, capsys)
    assert code == 1, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "read-only" in lines[0] and "SELECT, WITH, DESCRIBE, SHOW" in lines[0], lines[0]
    assert stdout == "" and "secret" not in stderr and "Traceback" not in stderr
    assert snapshot(sandbox_home) == before        # no canary, the warehouse file untouched
    assert not list(sandbox_home.rglob("canary*"))
    assert rows(sandbox_home) == count == 1


REFUSED_BY_DUCKDB = (
    "COPY (SELECT 1) TO '{outside}/canary.csv'",
    "SELECT * FROM read_text('{outside}/secret.csv')",
    "SELECT * FROM '{outside}/secret.csv'",
    "ATTACH '{outside}/canary.duckdb' AS c",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "INSTALL httpfs",
    "LOAD httpfs",
    "EXPORT DATABASE '{outside}/canary_export'",
    "CREATE TABLE hack AS SELECT 1",
    "PRAGMA enable_profiling",
    "PRAGMA profile_output = '{outside}/canary.txt'",
    "CALL read_csv('{outside}/secret.csv')",
    "SELECT * FROM glob('{outside}/*')",
)


def test_sandbox_settings_refuse_even_without_the_statement_check(sandbox_home: Path) -> None:
    """Second wall: the connection's own settings refuse what the type check would refuse."""
    outside = sandbox_home / "outside"
    before = snapshot(sandbox_home)
    with connect_sandbox() as con:
        for template in REFUSED_BY_DUCKDB:
            with pytest.raises(duckdb.Error):
                con.execute(template.format(outside=outside))
        # DETACH then re-ATTACH the warehouse to write it: the re-attached file stays read-only
        con.execute(f"ATTACH '{sandbox_home / 'home' / 'warehouse.duckdb'}' AS again")
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM again.batches")
        setting = con.execute("SELECT current_setting('enable_external_access')").fetchone()
        assert setting == (False,)
    assert snapshot(sandbox_home) == before and rows(sandbox_home) == 1


@pytest.mark.parametrize("sql", [
    "SELECT batch_id FROM batches",
    "WITH b AS (SELECT * FROM batches) SELECT count(*) FROM b",
    "DESCRIBE batches",
    "SHOW TABLES",
    "SUMMARIZE batches",
    "EXPLAIN SELECT * FROM batches",
    "EXPLAIN ANALYZE SELECT * FROM batches",
    "  select 1 as one ;  ",
])
def test_reads_are_allowed(sandbox_home: Path, sql: str) -> None:
    with connect_sandbox() as con:
        frame = run_query(con, sql)
    assert len(frame) >= 1


def test_a_file_read_inside_a_select_is_refused_in_process(sandbox_home: Path) -> None:
    with connect_sandbox() as con, pytest.raises(QueryRefusedError, match="reads or writes"):
        run_query(con, f"SELECT * FROM read_csv('{sandbox_home / 'outside' / 'secret.csv'}')")


def test_every_named_report_runs_in_the_sandbox(sandbox_home: Path) -> None:
    with connect_sandbox() as con:
        for name in REPORTS:
            run_report(con, name, {})          # no report needs a file or a setting
        frame = run_report(con, "batches", {"dataset": "customer' OR '1'='1"})
        assert frame.empty                     # the parameter stayed a bound value
        assert list(run_report(con, "batches", {"dataset": "customer"})["batch_id"]) == ["b1"]


def test_cli_query_and_report_still_answer(sandbox_home: Path) -> None:
    out = overnight(sandbox_home, "query", "SELECT batch_id FROM batches", "-f", "csv")
    assert out.returncode == 0 and out.stdout.splitlines() == ["batch_id", "b1"], out.stderr
    out = overnight(sandbox_home, "report", "batches", "-p", "dataset=customer", "-f", "csv")
    assert out.returncode == 0 and "b1" in out.stdout, out.stderr
