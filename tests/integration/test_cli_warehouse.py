"""The `overnight` command line, run as a user runs it (a real process, a real DuckDB file)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from warehouse import MIGRATIONS, connect


def overnight(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("overnight") or str(Path(sys.executable).parent / "overnight")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


def test_init_and_status(home: Path) -> None:
    first = overnight("warehouse", "init")
    assert first.returncode == 0, first.stderr
    assert "applied migrations" in first.stdout and str(home / "warehouse.duckdb") in first.stdout
    assert "already up to date" in overnight("warehouse", "init").stdout
    status = overnight("warehouse", "status", "--format", "json")
    assert status.returncode == 0, status.stderr
    tables = {row["table"]: row["rows"] for row in json.loads(status.stdout)}
    assert tables["schema_version"] == len(MIGRATIONS) and tables["batches"] == 0


def test_query_formats(warehouse_path: Path) -> None:
    out = overnight("query", "SELECT 1 AS one, 'x' AS letter", "--format", "csv")
    assert out.returncode == 0 and out.stdout.splitlines() == ["one,letter", "1,x"]
    out = overnight("query", "SELECT 1 AS one", "-f", "json")
    assert json.loads(out.stdout) == [{"one": 1}]
    out = overnight("query", "SELECT 42 AS answer")
    assert "answer" in out.stdout and "42" in out.stdout


def test_malformed_sql_is_one_line_error(warehouse_path: Path) -> None:
    out = overnight("query", "SELEC 1 FROM")
    assert out.returncode != 0
    assert "Parser Error" in out.stderr and "syntax error" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr + out.stdout


def test_query_is_read_only(warehouse_path: Path) -> None:
    out = overnight("query", "DROP TABLE batches")
    assert out.returncode == 1 and "read-only" in out.stderr.lower()
    assert "SELECT, WITH, DESCRIBE, SHOW" in out.stderr     # says what is allowed
    assert len(out.stderr.strip().splitlines()) == 1
    with connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM batches").fetchone() == (0,)


def test_report_parameters_are_bound_not_pasted(warehouse_path: Path) -> None:
    with connect() as con:
        con.execute(
            "INSERT INTO batches VALUES ('b1', 'customer', DATE '2026-01-01', 'generator',"
            " 'stable', 1, 10, 10, 'accepted', NULL, NULL, NULL, NULL, now())"
        )
    hostile = "customer' OR '1'='1"
    out = overnight("report", "batches", "-p", f"dataset={hostile}", "-f", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []  # the quote stayed a value: nothing matched
    out = overnight("report", "batches", "-p", "dataset=customer", "-f", "json")
    assert [row["batch_id"] for row in json.loads(out.stdout)] == ["b1"]


def test_report_errors_are_clear(warehouse_path: Path) -> None:
    out = overnight("report", "nope")
    assert out.returncode == 1 and "unknown report 'nope'" in out.stderr
    out = overnight("report", "batches", "-p", "colour=red")
    assert out.returncode == 1 and "no parameter colour" in out.stderr
    out = overnight("report", "batches", "-p", "dataset")
    assert out.returncode == 1 and "key=value" in out.stderr
    assert "Traceback" not in out.stderr


def test_commands_on_missing_warehouse_say_init(home: Path) -> None:
    out = overnight("warehouse", "status")
    assert out.returncode == 1 and "overnight warehouse init" in out.stderr


def test_every_command_has_help() -> None:
    from typer.main import get_command
    from typer.testing import CliRunner

    from orchestration.cli import app

    root = get_command(app)
    runner = CliRunner()
    paths: list[list[str]] = [[]]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(command, "commands", {}))
    assert len(paths) > 15
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, path
    assert overnight("--help").returncode == 0     # and the installed console script
