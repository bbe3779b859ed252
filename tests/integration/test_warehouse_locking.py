"""The connection helper under real lock contention between processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from warehouse import WarehouseError, WarehouseLockedError, connect

HOLD = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("INSERT INTO alerts (alert_id, kind, severity, message, created_at)"
                " VALUES ('holder', 'test', 'info', 'held', now())")
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    """
)

WRITER = textwrap.dedent(
    """
    import sys, time
    from warehouse import transaction
    name, n = sys.argv[1], int(sys.argv[2])
    for i in range(n):
        with transaction() as con:
            con.execute("INSERT INTO alerts (alert_id, kind, severity, message, created_at)"
                        " VALUES (?, 'test', 'info', 'w', now())", [f"{name}-{i}"])
            time.sleep(0.02)  # hold the lock a little, so the two writers really collide
    print("done", flush=True)
    """
)


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_two_writer_processes_both_succeed(warehouse_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, name, "25"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, errout) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, errout
        assert out.strip() == "done"
    with connect(read_only=True) as con:
        counts = dict(con.execute(
            "SELECT split_part(alert_id, '-', 1), count(*) FROM alerts GROUP BY 1"
        ).fetchall())
    assert counts == {"a": 25, "b": 25}


def test_reader_waits_for_writer_then_reads(warehouse_path: Path) -> None:
    holder = _hold(warehouse_path, 1.5)
    started = time.monotonic()
    with connect(read_only=True, timeout=30) as con:
        waited = time.monotonic() - started
        rows = con.execute("SELECT message FROM alerts").fetchall()
    holder.wait(timeout=30)
    assert rows == [("held",)]
    assert waited > 0.5  # it really had to wait for the holder to let go


def test_gives_up_with_error_naming_file_and_holder(warehouse_path: Path) -> None:
    holder = _hold(warehouse_path, 5)
    try:
        with pytest.raises(WarehouseLockedError) as caught, connect(timeout=0.5):
            pass
    finally:
        holder.kill()
        holder.wait()
    message = str(caught.value)
    assert str(warehouse_path) in message
    assert f"PID {holder.pid}" in message
    assert caught.value.waited == 0.5


def test_read_only_on_missing_file_says_to_init(home: Path) -> None:
    with pytest.raises(WarehouseError, match="overnight warehouse init"), connect(read_only=True):
        pass


def test_transaction_rolls_back_on_error(warehouse_path: Path) -> None:
    from warehouse import transaction

    with pytest.raises(RuntimeError), transaction() as con:
        con.execute("INSERT INTO alerts (alert_id, kind, severity, message, created_at)"
                    " VALUES ('x', 'test', 'info', 'lost', now())")
        raise RuntimeError("boom")
    with connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM alerts").fetchone() == (0,)
