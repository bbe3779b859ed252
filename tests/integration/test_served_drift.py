"""Drift of served traffic: real requests through the Flask app, collected, typed and judged
out of core; the verdict equals today's in-memory verdict on the same rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.registry.versions import set_alias
from models.serving.app import create_app
from models.serving.config import ServingConfig
from monitoring.collect import collect_serving_logs
from monitoring.drift.served import (
    TRAINING_LABELS,
    NoServedTraffic,
    in_memory_drift,
    run_served_report,
    served_drift,
)
from monitoring.drift.served_store import files_to_report
from orchestration.stages import NightPlan, report_served_drift
from tests.support.serving_support import data_home, records, register_champion
from warehouse import connect

NIGHT = date(2026, 11, 20)
ADMIN = {"Authorization": "Bearer s3cret"}
SHIFTED = {"age", "region"}


def _shifted(rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Older customers (within the API's range) and mostly from the west."""
    rng = np.random.default_rng(seed)
    for row in rows:
        if row["age"] is not None:
            row["age"] = float(min(row["age"] + 15, 80))
        if rng.random() < 0.7:
            row["region"] = "west"
    return rows


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """customer: champion + challenger, 1600 shifted records served (canary and shadow on);
    medical: a champion that serves nothing."""
    home = tmp_path_factory.mktemp("served") / "home"
    with data_home(home, OVERNIGHT_LOCK_TIMEOUT_SECONDS="20", OVERNIGHT_ADMIN_TOKEN="s3cret"):
        champion = register_champion("customer")
        challenger = register_champion("customer", algorithm="random_forest",
                                       promote_it=False, params={"n_estimators": 20})
        set_alias("customer", "challenger", challenger.model_version, reason="test")
        medical = register_champion("medical")
        app = create_app(ServingConfig(datasets=["customer", "medical"], max_batch=500,
                                       background=False))
        client = app.test_client()
        assert client.post("/v1/admin/traffic", json={"dataset": "customer",
                           "canary_share": 0.3, "shadow": True}, headers=ADMIN
                           ).status_code == 200
        answered = []
        for i in range(4):
            body = _shifted(records("customer", 400, seed=100 + i), seed=i)
            response = client.post("/v1/datasets/customer/predict", json=body,
                                   headers={"X-Routing-Key": f"client-{i}"})
            assert response.status_code == 200, response.json
            answered += response.json["predictions"]
        app.extensions["overnight"]["log"].flush()
        counts = collect_serving_logs()
        yield {"home": home, "champion": champion.model_version, "medical":
               medical.model_version, "answered": answered, "counts": counts}


def test_collect_types_served_and_canary_rows_but_not_shadow_rows(served) -> None:
    aliases = {p["alias"] for p in served["answered"]}
    assert aliases == {"champion", "challenger"}          # the canary answered some
    assert served["counts"]["served_typed_rows"] == 1600  # shadow copies left out
    with connect(read_only=True) as con:
        shadow = con.execute("SELECT count(*) FROM predictions WHERE role = 'shadow'"
                             ).fetchone()[0]
        files = con.execute("SELECT path, n_rows, columns FROM served_files"
                            " WHERE dataset = 'customer'").fetchall()
    assert shadow > 0
    assert sum(f[1] for f in files) == 1600
    columns = json.loads(files[0][2])
    assert [c["column"] for c in columns] == [f"c{i}" for i in range(len(columns))]
    assert columns[0]["feature"] == "age"


def test_served_report_marks_exactly_the_shifted_columns(served) -> None:
    summary = run_served_report("customer", served["champion"], night_date=NIGHT)
    features = {c.column for c in summary.columns if c.column_type != "prediction"}
    assert set(summary.drifted_columns) & features == SHIFTED
    assert summary.n_current == 1600
    with connect(read_only=True) as con:
        report = con.execute("SELECT source, batch_id, n_current, window_start, window_end,"
                             " html_path FROM drift_reports WHERE report_id = ?",
                             [summary.report_id]).fetchone()
        stored = dict(con.execute("SELECT column_name, drifted FROM drift_columns"
                                  " WHERE report_id = ?", [summary.report_id]).fetchall())
        taken = con.execute("SELECT count(*) FROM served_files WHERE report_id = ?",
                            [summary.report_id]).fetchone()[0]
    assert report[0] == "served" and report[1] is None and report[2] == 1600
    assert report[3] <= report[4]
    assert Path(report[5]).name == f"{NIGHT.isoformat()}-served.html"
    assert "served traffic" in Path(report[5]).read_text()
    assert {k for k, v in stored.items() if v and k in features} == SHIFTED
    assert TRAINING_LABELS in stored and taken >= 1


def test_out_of_core_verdict_equals_the_in_memory_verdict(served) -> None:
    from models.data.datasets import builtin
    from models.registry.versions import get_version
    from monitoring.drift.profile import profile_for_version

    spec = builtin("customer").spec
    files = list(files_to_report("customer", spec, f"served:customer:{NIGHT}").paths)
    profile = profile_for_version(get_version(served["champion"]), spec=spec)
    ours, theirs = served_drift(files, profile, spec), in_memory_drift(files, profile, spec)
    assert [(c.column, c.method, c.drifted) for c in ours.columns] == [
        (c.column, c.method, c.drifted) for c in theirs.columns]
    for mine, reference in zip(ours.columns, theirs.columns, strict=True):
        assert mine.score == pytest.approx(reference.score, rel=1e-9, abs=1e-12)
    assert ours.dataset_drift == theirs.dataset_drift


def test_a_night_run_again_reads_the_same_rows_and_the_next_night_has_nothing(served) -> None:
    again = run_served_report("customer", served["champion"], night_date=NIGHT)
    assert again.n_current == 1600
    found = report_served_drift(NightPlan(night=NIGHT, datasets=["customer"]), "customer",
                                served["champion"])
    assert found is not None and found["n_current"] == 1600
    assert set(found["drifted"]) >= SHIFTED and found["report"].endswith("-served.html")
    with connect(read_only=True) as con:
        reports = con.execute("SELECT count(*) FROM drift_reports WHERE source = 'served'"
                              ).fetchone()[0]
    assert reports == 1                     # run again: replaced, not added
    plan = NightPlan(night=NIGHT + timedelta(days=1), datasets=["customer"])
    assert report_served_drift(plan, "customer", served["champion"]) is None
    with pytest.raises(NoServedTraffic):
        run_served_report("customer", served["champion"], night_date=plan.night)


def test_a_dataset_with_no_served_rows_gets_no_report_and_no_error(served) -> None:
    plan = NightPlan(night=NIGHT, datasets=["medical"])
    assert report_served_drift(plan, "medical", served["medical"]) is None
    with connect(read_only=True) as con:
        reports = con.execute("SELECT count(*) FROM drift_reports WHERE dataset = 'medical'"
                              ).fetchone()[0]
        alerts = con.execute("SELECT count(*) FROM alerts WHERE dataset = 'medical'"
                             ).fetchone()[0]
    assert reports == 0 and alerts == 0


def test_the_board_drift_page_shows_the_served_source(served) -> None:
    from streamlit.testing.v1 import AppTest

    from monitoring.board.launch import app_path

    run_served_report("customer", served["champion"], night_date=NIGHT)
    app = AppTest.from_file(str(app_path()), default_timeout=120)
    app.run()
    app.switch_page("views/drift.py").run()
    assert not app.exception, [e.message for e in app.exception]
    assert [i.value for i in app.info if "No drift report" in i.value]   # no batch report
    app.radio(key="drift.source").set_value("served").run()
    assert not app.exception, [e.message for e in app.exception]
    shown = {m.label: m.value for m in app.metric}
    assert shown["Against"] == served["champion"]
    with connect(read_only=True) as con:
        n_drifted, n_columns = con.execute(
            "SELECT n_drifted, n_columns FROM drift_reports WHERE source = 'served'"
            " AND dataset = 'customer'").fetchone()
    assert shown["Drifted columns"] == f"{n_drifted} of {n_columns}"
    assert "served traffic" in app.get("iframe")[0].proto.srcdoc
