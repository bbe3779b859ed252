"""The cost of every model on the shared filled home (`board_home`: two real nights with
Metaflow training, then real requests through the serving API with a challenger in shadow,
collected): cost rows per training branch and in total, per served model version, the report
that joins them with quality, and the board's costs page (Streamlit's AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from monitoring.board import data
from monitoring.board.launch import app_path
from monitoring.costs import model_costs
from tests.support.board_fixture import CHAMPION, SERVED

pytestmark = pytest.mark.slow


@pytest.fixture
def filled(board_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OVERNIGHT_HOME", str(board_home))
    return board_home


def test_each_training_run_left_cost_rows_per_branch_and_in_total(filled: Path) -> None:
    with data.reading() as con:
        runs = con.execute("SELECT run_id, winner_version FROM training_runs"
                           " WHERE status = 'ok'").fetchall()
        assert runs
        for run_id, winner in runs:
            branches = {r[0] for r in con.execute(
                "SELECT algorithm FROM candidate_results WHERE run_id = ?", [run_id]).fetchall()}
            rows = con.execute(
                "SELECT step, branch, status, cpu_seconds, wall_seconds, peak_rss_mb, gb_hours,"
                " model_version FROM training_costs WHERE run_id = ?", [run_id]).fetchall()
            by_step = {(r[0], r[1]): r for r in rows}
            assert {b for s, b in by_step if s == "train"} == branches
            assert {s for s, _ in by_step} == {"start", "train", "join", "total"}
            assert {r[7] for r in rows} == {winner}
            tasks = [r for r in rows if r[0] != "total"]
            total = by_step[("total", "")]
            for task in tasks:          # a task pays at least its Python and imports
                assert task[2] == "ok" and task[3] > 0.1 and task[4] > 0 and task[5] > 50
            assert total[3] == pytest.approx(sum(t[3] for t in tasks))
            assert total[4] >= max(t[4] for t in tasks)
            assert total[5] == max(t[5] for t in tasks)
            assert total[6] == pytest.approx(sum(t[6] for t in tasks))


def test_served_load_left_cost_rows_per_model_version(filled: Path) -> None:
    with data.reading() as con:
        served = dict(con.execute("SELECT model_version, count(*) FROM predictions"
                                  " WHERE role IN ('served', 'shadow') GROUP BY ALL").fetchall())
        costs = {r[0]: r[1:] for r in con.execute(
            "SELECT model_version, sum(predictions), sum(cpu_seconds), sum(requests)"
            " FROM serving_costs GROUP BY ALL").fetchall()}
    assert set(costs) == set(served) and CHAMPION in costs and len(costs) == 2
    for version, (predictions, cpu, requests) in costs.items():
        assert predictions == served[version] == SERVED and cpu > 0 and requests == SERVED // 10


def test_the_report_joins_costs_with_quality(filled: Path) -> None:
    with data.reading() as con:
        report = model_costs(con, ["customer"]).set_index("model_version")
        f1 = dict(con.execute("SELECT model_version, TRY_CAST(metrics ->> '$.f1_macro'"
                              " AS DOUBLE) FROM model_versions").fetchall())
    champion = report.loc[CHAMPION]
    assert champion["f1_macro"] == f1[CHAMPION]
    assert champion["training_cost"] > 0 and champion["cost_per_1000"] > 0
    assert champion["predictions"] == SERVED
    assert "champion" in champion["aliases"]


def test_costs_page(filled: Path) -> None:
    app = AppTest.from_file(str(app_path()), default_timeout=120)
    app.run()
    app.switch_page("views/costs.py").run()
    assert not app.exception, [e.message for e in app.exception]
    shown = [(m.label, m.value) for m in app.metric]       # four per dataset's champion
    first = shown.index(("Champion of customer", CHAMPION))
    assert shown[first + 3][0] == "Cost per 1000 predictions"
    assert float(shown[first + 3][1]) > 0 and float(shown[first + 2][1]) > 0
    assert len(app.dataframe) >= 2
