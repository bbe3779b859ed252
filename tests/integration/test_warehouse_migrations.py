from pathlib import Path

from warehouse import MIGRATIONS, connect, current_version, migrate
from warehouse.migrations import TABLES, VIEWS


def _objects(con, kind: str) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = ?", [kind]
    ).fetchall()
    return {r[0] for r in rows}


def test_migrations_create_documented_tables_and_views(home: Path) -> None:
    with connect() as con:
        applied = migrate(con)
        assert [m.version for m in applied] == [m.version for m in MIGRATIONS]
        assert set(TABLES) | {"schema_version"} == _objects(con, "BASE TABLE")
        assert set(VIEWS) == _objects(con, "VIEW")
        assert current_version(con) == MIGRATIONS[-1].version


def test_migrations_are_idempotent(warehouse_path: Path) -> None:
    with connect() as con:
        con.execute(
            "INSERT INTO alerts (alert_id, kind, severity, message, created_at)"
            " VALUES ('a1', 'test', 'info', 'kept', now())"
        )
        before = con.execute("SELECT * FROM schema_version ORDER BY version").fetchall()
        assert migrate(con) == []
        assert migrate(con) == []
        after = con.execute("SELECT * FROM schema_version ORDER BY version").fetchall()
        assert before == after
        assert con.execute("SELECT message FROM alerts").fetchall() == [("kept",)]


def test_views_answer_on_empty_warehouse(warehouse_path: Path) -> None:
    with connect(read_only=True) as con:
        for view in VIEWS:
            assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,)


def test_lineage_view_follows_prediction_to_training_batches(warehouse_path: Path) -> None:
    with connect() as con:
        con.execute(
            "INSERT INTO batches VALUES ('b1', 'customer', DATE '2026-01-01', 'generator',"
            " 'stable', 1, 10, 10, 'accepted', NULL, NULL, NULL, NULL, now()),"
            " ('b2', 'customer', DATE '2026-01-02', 'generator', 'stable', 1, 10, 10,"
            " 'accepted', NULL, NULL, NULL, NULL, now())"
        )
        con.execute(
            "INSERT INTO training_runs (run_id, dataset, pathspec, status)"
            " VALUES ('r1', 'customer', 'TrainingFlow/1', 'ok')"
        )
        con.execute(
            "INSERT INTO model_versions VALUES ('customer-v1', 'customer', 1, 'rf', 'r1',"
            " '/a', 'abc', '{}', '{}', ['b1', 'b2'], now(), now())"
        )
        con.execute(
            "INSERT INTO predictions (prediction_id, dataset, model_version, predicted_at,"
            " predicted_class) VALUES ('p1', 'customer', 'customer-v1', now(), 'High')"
        )
        rows = con.execute(
            "SELECT pathspec, training_batch FROM v_lineage WHERE prediction_id = 'p1'"
            " ORDER BY training_batch"
        ).fetchall()
    assert rows == [("TrainingFlow/1", "b1"), ("TrainingFlow/1", "b2")]
