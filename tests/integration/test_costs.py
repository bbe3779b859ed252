"""The cost of every model: serving CPU per model version through the real Flask app and the
landing zone, the named report that joins cost with quality, and the nightly alert on a
rise of the cost per 1000 predictions after a promotion."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.registry.manifest import DatasetTraffic, Traffic, write_traffic
from models.registry.versions import get_version, set_alias
from models.serving.app import create_app
from models.serving.config import ServingConfig
from models.serving.costs import CostMeter, Usage, attribute, interval_seconds
from models.training.costs import record_training_costs, task_cost
from monitoring.alerts import open_alerts
from monitoring.collect import collect_serving_logs
from monitoring.costs import MIN_PREDICTIONS, alert_serving_cost_rise, model_costs
from monitoring.policy import RetrainingPolicy
from tests.support.serving_support import records, register_champion
from warehouse import connect, transaction
from warehouse.landing import landing_folder, rejected_folder
from warehouse.reports import run_report

POLICY = RetrainingPolicy(cpu_hour_price=0.04, gb_hour_price=0.005, max_cost_rise=0.25)


def test_overhead_is_shared_by_predictions_and_memory_too() -> None:
    usage = {"a-v1": Usage("a", cpu_seconds=1.0, predictions=300, requests=3),
             "a-v2": Usage("a", cpu_seconds=0.5, predictions=100, requests=1)}
    rows = {r["model_version"]: r for r in attribute(usage, process_cpu=2.3, gb_hours=0.4)}
    overhead = 2.3 - 1.5
    assert rows["a-v1"]["cpu_seconds"] == pytest.approx(1.0 + overhead * 0.75)
    assert rows["a-v2"]["cpu_seconds"] == pytest.approx(0.5 + overhead * 0.25)
    assert sum(r["cpu_seconds"] for r in rows.values()) == pytest.approx(2.3)
    assert rows["a-v1"]["gb_hours"] == pytest.approx(0.3)
    assert rows["a-v2"]["request_cpu_seconds"] == 0.5
    # clocks that disagree slightly never make a negative overhead
    low = attribute(usage, process_cpu=1.4, gb_hours=0.0)
    assert [r["cpu_seconds"] for r in low] == [1.0, 0.5]


def test_a_wrong_interval_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERNIGHT_COST_INTERVAL_SECONDS", "soon")
    with pytest.raises(ValueError, match="OVERNIGHT_COST_INTERVAL_SECONDS"):
        interval_seconds()
    monkeypatch.setenv("OVERNIGHT_COST_INTERVAL_SECONDS", "30")
    assert interval_seconds() == 30.0


def test_served_load_leaves_cost_rows_per_model_version(warehouse_path: Path) -> None:
    champion = register_champion("customer", seed=1)
    challenger = register_champion("customer", seed=2, promote_it=False,
                                   algorithm="random_forest", params={"n_estimators": 60})
    set_alias("customer", "challenger", challenger.model_version, reason="test: shadow")
    write_traffic(Traffic(datasets={"customer": DatasetTraffic(shadow=True)}))
    app = create_app(ServingConfig(datasets=["customer"], background=False))
    client = app.test_client()
    for start in range(12):
        answer = client.post("/v1/datasets/customer/predict",
                             json=records("customer", 25, seed=start))
        assert answer.status_code == 200, answer.json
    assert client.post("/v1/datasets/customer/predict", json=[{"age": "old"}]).status_code \
        == 422                                          # CPU with no model: overhead
    app.extensions["overnight"]["log"].close()
    landed = app.extensions["overnight"]["costs"].land()
    assert landed is not None and landed.parent == landing_folder("costs")
    assert app.extensions["overnight"]["costs"].land() is None     # nothing new since
    collected = collect_serving_logs()
    assert collected["cost_files"] == 1 and collected["serving_costs"] == 2
    with connect(read_only=True) as con:
        rows = {r[0]: r[1:] for r in con.execute(
            "SELECT model_version, predictions, requests, cpu_seconds, request_cpu_seconds,"
            " gb_hours, worker FROM serving_costs").fetchall()}
        served = dict(con.execute("SELECT model_version, count(*) FROM predictions"
                                  " GROUP BY ALL").fetchall())
    assert set(rows) == {champion.model_version, challenger.model_version}
    for version, (predictions, requests, cpu, request_cpu, gb_hours, worker) in rows.items():
        assert predictions == served[version] == 300 and requests == 12
        assert 0 < request_cpu <= cpu and gb_hours > 0 and worker.endswith(f"-{_pid()}")
    # a 60-tree forest costs more per prediction than a logistic regression, in the same worker
    assert rows[challenger.model_version][3] > rows[champion.model_version][3]
    # collecting again stores nothing twice
    assert collect_serving_logs()["serving_costs"] == 0


def _pid() -> int:
    import os

    return os.getpid()


def test_a_bad_cost_file_is_set_aside_with_one_alert(warehouse_path: Path) -> None:
    folder = landing_folder("costs")
    folder.mkdir(parents=True)
    (folder / "cost-broken.parquet").write_bytes(b"not parquet")
    meter = CostMeter(interval=3600)
    meter.record("customer", "customer-v9", 10, 0.01)
    meter.land()
    collected = collect_serving_logs()
    assert collected["serving_costs"] == 1 and collected["rejected"] == 1
    assert (rejected_folder("costs") / "cost-broken.parquet").exists()
    alerts = open_alerts()
    assert list(alerts["kind"]) == ["landing_rejected"] and alerts["dataset"].isna().all()


def _add_serving(version: str, dataset: str, start: datetime, predictions: int,
                 cpu_seconds: float, gb_hours: float = 0.0) -> None:
    with transaction() as con:
        con.execute("INSERT INTO serving_costs VALUES (?, 'test-1', ?, ?, ?, ?, ?, 1, ?, ?, ?,"
                    " NULL)", [uuid.uuid4().hex, dataset, version, start,
                               start + timedelta(minutes=1), predictions, cpu_seconds,
                               cpu_seconds, gb_hours])


def test_the_report_joins_training_and_serving_cost_with_quality(warehouse_path: Path) -> None:
    version = register_champion("customer", seed=1)
    tasks = [task_cost("start"), task_cost("train", "logistic_regression"),
             task_cost("train", "dummy", status="failed"), task_cost("join")]
    assert record_training_costs("TrainingFlow/1", version.model_version, "customer",
                                 tasks) == 5
    now = datetime.now(UTC).replace(tzinfo=None)
    _add_serving(version.model_version, "customer", now, 400, 2.0, 0.01)
    _add_serving(version.model_version, "customer", now, 600, 1.0, 0.03)
    with connect(read_only=True) as con:
        priced = model_costs(con, ["customer"], {"default": POLICY})
        unpriced = run_report(con, "model_costs", {"dataset": "customer"})
        per_step = con.execute("SELECT step, branch, status, cpu_seconds FROM training_costs"
                               " ORDER BY step, branch").fetchall()
    row = priced.iloc[0]
    assert row["model_version"] == version.model_version and row["aliases"] == "champion"
    assert row["f1_macro"] == get_version(version.model_version).card["metrics"]["f1_macro"]
    total_cpu = sum(t["cpu_seconds"] for t in tasks)
    assert row["training_cpu_seconds"] == pytest.approx(total_cpu)
    assert [(s, b, st) for s, b, st, _ in per_step] == [
        ("join", "", "ok"), ("start", "", "ok"), ("total", "", "ok"),
        ("train", "dummy", "failed"), ("train", "logistic_regression", "ok")]
    gb = sum(t["peak_rss_mb"] / 1024 * t["wall_seconds"] / 3600 for t in tasks)
    assert row["training_cost"] == pytest.approx(total_cpu / 3600 * 0.04 + gb * 0.005)
    assert row["predictions"] == 1000 and row["cpu_seconds_per_1000"] == pytest.approx(3.0)
    assert row["cost_per_1000"] == pytest.approx(3.0 / 3600 * 0.04 + 0.04 * 0.005)
    assert unpriced["cost_per_1000"].isna().all()        # money needs prices


def _promotion_with_costs(previous_cpu: float, champion_cpu: float) -> tuple[str, str]:
    """A real promotion (v1 then v2 champion) with serving cost rows either side of it."""
    first = register_champion("customer", seed=1)
    before = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    _add_serving(first.model_version, "customer", before, 1000, previous_cpu)
    second = register_champion("customer", seed=2)
    after = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=1)
    _add_serving(second.model_version, "customer", after, 1000, champion_cpu)
    return first.model_version, second.model_version


def test_a_cost_rise_beyond_the_share_alerts_once(warehouse_path: Path) -> None:
    previous, champion = _promotion_with_costs(previous_cpu=1.0, champion_cpu=1.3)
    alert = alert_serving_cost_rise("customer", policy=POLICY)
    assert alert is not None and alert.kind == "serving_cost" and alert.severity == "warning"
    assert alert.details is not None and alert.details["rise"] == pytest.approx(0.3)
    assert alert.details["champion"] == champion and alert.details["previous"] == previous
    assert alert_serving_cost_rise("customer", policy=POLICY) is not None
    assert len(open_alerts(dataset="customer")) == 1                 # one per promotion
    assert "rose by 30%" in json.dumps(alert.message)


def test_a_rollback_is_not_a_promotion(warehouse_path: Path) -> None:
    from models.registry.versions import rollback

    previous, champion = _promotion_with_costs(previous_cpu=1.0, champion_cpu=0.5)
    rollback("customer", reason="test")          # back to the dearer one: not a promotion
    with connect(read_only=True) as con:
        row = con.execute("SELECT changed_at, change_id FROM alias_history"
                          " WHERE alias = 'champion' ORDER BY change_id DESC LIMIT 1").fetchone()
    assert row is not None
    _add_serving(champion, "customer", row[0] - timedelta(minutes=1), 1000, 0.5)
    _add_serving(previous, "customer", row[0] + timedelta(minutes=1), 1000, 1.0)
    assert alert_serving_cost_rise("customer", policy=POLICY) is None
    # the same figures after a promotion (not a rollback) do alert: the rule is what held
    with transaction() as con:
        con.execute("UPDATE alias_history SET reason = 'promoted back' WHERE change_id = ?",
                    [row[1]])
    assert alert_serving_cost_rise("customer", policy=POLICY) is not None


def test_a_rise_within_the_share_does_not_alert(warehouse_path: Path) -> None:
    _promotion_with_costs(previous_cpu=1.0, champion_cpu=1.2)
    assert alert_serving_cost_rise("customer", policy=POLICY) is None
    assert open_alerts().empty


def test_too_few_predictions_say_nothing(warehouse_path: Path) -> None:
    first = register_champion("customer", seed=1)
    _add_serving(first.model_version, "customer",
                 datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1), 1000, 1.0)
    second = register_champion("customer", seed=2)
    _add_serving(second.model_version, "customer",
                 datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=1),
                 MIN_PREDICTIONS - 1, 5.0)
    assert alert_serving_cost_rise("customer", policy=POLICY) is None


def test_a_warehouse_without_the_cost_tables_keeps_working(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A home migrated before the cost tables: cost files wait for the migration, the nightly
    check says nothing, and the join of a training run would only warn."""
    import warehouse.migrations as migrations
    from warehouse import get_settings, migrate

    get_settings().ensure_dirs()
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS",
                      tuple(m for m in migrations.MIGRATIONS if m.version < 6))
        with connect() as con:
            migrate(con)
    meter = CostMeter(interval=3600)
    meter.record("customer", "customer-v1", 10, 0.01)
    landed = meter.land()
    collected = collect_serving_logs()
    assert collected["serving_costs"] == 0 and collected["rejected"] == 0
    assert landed is not None and landed.exists()                 # waiting, not rejected
    register_champion("customer", seed=1)
    register_champion("customer", seed=2)
    assert alert_serving_cost_rise("customer", policy=POLICY) is None
    from models.training.costs import record_costs

    total = record_costs("TrainingFlow/9", "customer-v2", "customer", [task_cost("start")],
                         task_cost("join"))
    assert total["step"] == "total" and total["cpu_seconds"] > 0
    with connect() as con:
        assert [m.version for m in migrate(con)] == [6]
    assert collect_serving_logs()["serving_costs"] == 1           # stored once migrated
