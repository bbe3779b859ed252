"""Batches through the warehouse: idempotent, quarantined when bad, lineage recorded."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from models.data.batches import generate_batch, load_batch, load_training_frame, store_batch
from models.data.datasets import get_spec
from models.data.generators import customer, medical, news
from models.data.generators.base import DriftState
from warehouse import connect

DAY = date(2026, 4, 1)


def test_generated_batch_lands_with_lineage_and_checks(warehouse_path: Path) -> None:
    batch = generate_batch("medical", DAY, n_rows=300, seed=5,
                           drift=DriftState(label_shift=1.0), scenario="label_shift")
    assert batch.status == "accepted" and batch.n_rows == 300
    with connect(read_only=True) as con:
        row = con.execute("SELECT dataset, batch_date, scenario, seed, n_rows, n_labelled, source"
                          " FROM batches WHERE batch_id = ?", [batch.batch_id]).fetchone()
        checks = con.execute("SELECT count(*) FROM quality_checks WHERE batch_id = ?",
                             [batch.batch_id]).fetchone()
        assert get_spec(con, "medical") == medical.SPEC
    assert row == ("medical", DAY, "label_shift", 5, 300, 300, "generator")
    assert checks == (len(batch.checks),)
    stored = load_batch(medical.SPEC, batch.batch_id)
    pd.testing.assert_frame_equal(stored, medical.generate(DAY, 300, 5, DriftState(label_shift=1)),
                                  check_dtype=False)


def test_generating_a_night_twice_does_not_duplicate(warehouse_path: Path) -> None:
    first = generate_batch("customer", DAY, n_rows=200)
    again = generate_batch("customer", DAY, n_rows=200)
    assert again.already_present and again.batch_id == first.batch_id
    with connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM batches").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM rowsr0_customer").fetchone() == (200,)


def test_quarantined_batch_is_kept_but_never_trained_on(warehouse_path: Path) -> None:
    good = generate_batch("customer", DAY, n_rows=200)
    bad_frame = customer.generate(date(2026, 4, 2), 200, 1)
    bad_frame.loc[bad_frame.sample(frac=0.3, random_state=1).index, "annual_income"] = None
    bad = store_batch(customer.SPEC, bad_frame, batch_id="customer-bad",
                      batch_date=date(2026, 4, 2), source="generator")
    assert bad.status == "quarantined" and "missing_values" in (bad.reason or "")
    frame, used = load_training_frame(customer.SPEC)
    assert used == [good.batch_id] and len(frame) == 200
    with connect(read_only=True) as con:
        kept = con.execute("SELECT count(*) FROM rowsr0_customer WHERE batch_id = 'customer-bad'"
                           ).fetchone()
        reason = con.execute("SELECT quarantine_reason FROM v_quarantine").fetchone()
    assert kept == (200,) and reason is not None and "annual_income" in reason[0]


def test_training_window_by_date(warehouse_path: Path) -> None:
    for day in (1, 2, 3):
        generate_batch("news", date(2026, 4, day), n_rows=50)
    frame, used = load_training_frame(news.SPEC, start=date(2026, 4, 2), end=date(2026, 4, 3))
    assert used == ["news-2026-04-02", "news-2026-04-03"] and len(frame) == 100
    assert list(frame.columns) == ["headline", "body", "category"]


def test_rows_live_under_internal_names_and_old_warehouses_keep_working(
        warehouse_path: Path) -> None:
    """A warehouse written before internal names (`rows_<dataset>` with the users' names) is
    read as it is, and moved to the internal layout by the next write, rows intact."""
    spec = customer.SPEC
    frame = customer.generate(DAY, 60, 3)
    with connect() as con:     # the old layout, as earlier versions wrote it
        columns = ", ".join(f'"{f.name}" {"DOUBLE" if f.type == "numeric" else "VARCHAR"}'
                            for f in spec.features)
        con.execute(f"CREATE TABLE rows_customer (batch_id VARCHAR, row_number BIGINT,"
                    f' {columns}, "{spec.target}" VARCHAR)')
        con.register("old", frame[[*spec.feature_names, spec.target]])
        con.execute("INSERT INTO rows_customer SELECT 'customer-old', row_number() OVER () - 1,"
                    " * FROM old")
        con.execute("INSERT INTO batches VALUES ('customer-old', 'customer', ?, 'generator',"
                    " NULL, NULL, 60, 60, 'accepted', NULL, NULL, NULL, NULL, now())", [DAY])
    pd.testing.assert_frame_equal(load_batch(spec, "customer-old"), frame, check_dtype=False)
    assert load_training_frame(spec)[1] == ["customer-old"]
    generate_batch("customer", date(2026, 4, 2), n_rows=50)
    with connect(read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables"
                                            " WHERE table_name LIKE 'rows%'").fetchall()}
        names = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name ="
            " 'rowsr0_customer' ORDER BY ordinal_position").fetchall()]
    assert tables == {"rowsr0_customer"}
    assert names == ["batch_id", "row_number", *(f"f{i}" for i in range(len(spec.features))),
                     "label"]
    pd.testing.assert_frame_equal(load_batch(spec, "customer-old"), frame, check_dtype=False)
    training, used = load_training_frame(spec)
    assert used == ["customer-old", "customer-2026-04-02"] and len(training) == 110
