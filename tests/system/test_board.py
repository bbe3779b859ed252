"""The status board: its data functions and every page (Streamlit's AppTest), against a
warehouse filled by two real nights (`board_home`, built once per session) and against a new
data home; plus a warehouse held by another process."""

from __future__ import annotations

import json
import random
import time
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from monitoring.board import charts, data
from monitoring.board.launch import app_path, board_command
from monitoring.performance import _metrics, daily_performance
from tests.support.board_fixture import (
    CHAMPION,
    DATASETS,
    FAILED,
    LAST_NIGHT,
    NIGHTS,
    SERVED,
    writer_holding,
)

pytestmark = pytest.mark.slow
PAGES = ("overview", "nights", "performance", "drift", "models", "predictions", "ab", "alerts",
         "explanation", "costs")
EVERYTHING = data.Filters()


@pytest.fixture
def filled(board_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared filled data home, chosen through the environment as a user would."""
    monkeypatch.setenv("OVERNIGHT_HOME", str(board_home))
    return board_home


def scalar(sql: str) -> object:
    with data.reading() as con:
        row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def shadow_agreement() -> float:
    """The warehouse's own report of shadow agreement (an independent computation)."""
    from warehouse.reports import run_report

    with data.reading() as con:
        report = run_report(con, "shadow_agreement", {"dataset": "customer"})
    assert report["pairs"].sum() == SERVED
    return float((report["agreement"] * report["pairs"]).sum() / report["pairs"].sum())


# ------------------------------------------------------------------------ data functions


def test_board_state_of_a_filled_home(filled: Path) -> None:
    state = data.board_state()
    assert state.exists and not state.empty
    assert state.datasets == tuple(DATASETS)
    assert state.last_night == date.fromisoformat(LAST_NIGHT)
    assert state.first_day == date.fromisoformat(NIGHTS[0])
    assert state.counts["model_versions"] == 3       # two champions and the shadow challenger
    assert state.last_written is not None
    line = data.freshness(state, now=state.last_written + pd.Timedelta(minutes=12))
    assert "(12 min ago)" in line and f"Last night recorded: {LAST_NIGHT}" in line


def test_a_new_home_is_an_empty_state_not_an_error(home: Path) -> None:
    assert data.board_state() == data.BoardState(home / "warehouse.duckdb", exists=False)
    home.mkdir(parents=True)
    duckdb.connect(str(home / "warehouse.duckdb")).close()       # a file without the schema
    assert not data.board_state().exists
    with pytest.raises(data.NoWarehouse, match="overnight demo"):
        data.read(data.champions, EVERYTHING)


def test_a_migrated_but_empty_warehouse_is_empty(warehouse_path: Path) -> None:
    state = data.board_state()
    assert state.exists and state.empty and state.last_written is None
    assert data.freshness(state) == "The warehouse has no rows yet."
    assert data.read(data.overview, EVERYTHING).champions.empty


def test_overview_numbers(filled: Path) -> None:
    found = data.read(data.overview, EVERYTHING)
    assert dict(zip(found.champions["dataset"], found.champions["model_version"],
                    strict=True)) == {d: f"{d}-v1" for d in DATASETS}
    assert found.champions["accuracy"].between(0, 1).all()
    stages = data.stage_matrix(found.last_nights).set_index("dataset")
    assert (pd.to_datetime(stages["night_date"]).dt.date == date.fromisoformat(LAST_NIGHT)).all()
    failed_dataset, failed_stage = FAILED
    assert stages.loc[failed_dataset, failed_stage] == "failed"
    assert stages.loc[failed_dataset, "train"] == ""                  # never reached
    assert stages.loc["customer", "ingest"] == "ok"
    assert found.alerts["n"].sum() == scalar("SELECT count(*) FROM alerts WHERE status = 'open'")


def test_nights_decisions_and_every_trigger(filled: Path) -> None:
    found = data.read(data.nights, EVERYTHING)
    assert len(found.runs) == scalar("SELECT count(*) FROM nightly_runs")
    assert set(found.runs["stage"]) == set(data.STAGES)
    # the failed night of the drill has no decision; every decision lists its six triggers
    assert len(found.decisions) == 2 * len(DATASETS) - 1
    assert (found.triggers.groupby(["night_date", "dataset"]).size() == 6).all()
    drop = found.triggers[(found.triggers["dataset"] == "customer")
                          & (found.triggers["trigger"] == "accuracy_drop")
                          & (pd.to_datetime(found.triggers["night_date"]).dt.date
                             == date.fromisoformat(LAST_NIGHT))].iloc[0]
    assert drop["threshold"] == pytest.approx(0.05) and float(drop["value"]) > 0
    one_night = data.Filters(start=date.fromisoformat(NIGHTS[0]), end=date.fromisoformat(NIGHTS[0]))
    assert set(data.read(data.last_nights, one_night)["night_date"].astype(str)) == {NIGHTS[0]}


def test_performance_agrees_with_the_monitoring_module(filled: Path) -> None:
    """The board's confusion-table figures equal scikit-learn's on the labelled pairs."""
    found = data.read(data.performance, "customer", EVERYTHING)
    reference = daily_performance("customer")
    assert len(found.daily) == len(reference) == 1
    for column in ("n_labelled", "accuracy", "f1_macro"):
        assert found.daily[column].iloc[0] == pytest.approx(reference[column].iloc[0])
    assert found.daily["recall_per_class"].iloc[0] == pytest.approx(
        reference["recall_per_class"].iloc[0])
    assert len(found.recall) == len(reference["recall_per_class"].iloc[0])
    switches = found.switches
    assert list(switches["model_version"]) == [CHAMPION]
    assert str(switches["night"].iloc[0])[:10] == NIGHTS[0]    # the night of the promotion


def test_metrics_from_counts_equal_scikit_learn_on_random_pairs() -> None:
    rng = random.Random(3)
    labels = [rng.choice("abc") for _ in range(300)]
    predicted = [label if rng.random() < 0.7 else rng.choice("abcd") for label in labels]
    counts = (pd.DataFrame({"label": labels, "predicted_class": predicted})
              .value_counts().rename("n").reset_index())
    ours, sklearn = data.metrics_from_counts(counts), _metrics(predicted, labels)
    assert ours["n_labelled"] == sklearn["n_labelled"]
    for key in ("accuracy", "f1_macro"):
        assert ours[key] == pytest.approx(sklearn[key])
    assert ours["recall_per_class"] == pytest.approx(sklearn["recall_per_class"])


def test_drift_scores_on_one_scale(filled: Path) -> None:
    found = data.read(data.drift, EVERYTHING)
    assert set(found.trend["dataset"]) == set(DATASETS)
    assert (found.trend["night_date"].astype(str) == LAST_NIGHT).all()
    columns = found.columns
    assert not columns.empty
    # whatever the test (p-value or distance), the common scale puts drift at 1 and above
    assert (columns.loc[columns["drifted"], "relative"] >= 1).all()
    assert (columns.loc[~columns["drifted"], "relative"] < 1).all()
    assert data.relative_drift("ks", 0.05, 0.05, True) == pytest.approx(1)
    assert data.relative_drift("wasserstein", 0.2, 0.1, True) == pytest.approx(2)
    assert data.relative_drift("ks", None, 0.05, True) == 1.0
    figure = charts.drift_heatmap(columns[columns["dataset"] == "customer"])
    assert "drift" in np.asarray(figure.data[0].text).ravel().tolist()


def test_models_leaderboard_report_and_lineage(filled: Path) -> None:
    found = data.read(data.models, "customer")
    assert list(found.aliases["alias"]) == list(data.ALIASES)
    assert found.aliases.set_index("alias").loc["champion", "model_version"] == CHAMPION
    assert CHAMPION in set(found.history["model_version"])
    board = data.read(data.leaderboard, found.runs["run_id"].iloc[0])
    assert board.iloc[0]["rank"] == 1 and board.iloc[0]["significance"] == "best"
    assert set(board["algorithm"]) == {"logistic_regression", "dummy"}
    row = found.versions.set_index("model_version").loc[CHAMPION]
    reports = data.report_files(json.loads(row["card"]), row["artifact_path"])
    assert set(reports) == {"Model report", "Production report"}
    html = data.read_report(reports["Model report"])
    assert 'src="data:image/png;base64,' in html and 'src="confusion_matrix.png"' not in html
    lineage = data.read(data.lineage, CHAMPION)
    assert list(lineage.batches["batch_id"]) == [f"customer-{NIGHTS[0]}"]
    assert set(lineage.predictions["role"]) == {"batch", "served"}
    assert set(lineage.example["training_batch"]) == {f"customer-{NIGHTS[0]}"}
    dot = data.lineage_dot(lineage)
    assert "model customer-v1" in dot and "training run" in dot and "-> batch_0" in dot


def test_predictions_volume_review_and_shadow_agreement(filled: Path) -> None:
    found = data.read(data.predictions, EVERYTHING, ("served",))
    assert found.total == SERVED
    assert found.review_share == pytest.approx(scalar(
        "SELECT avg(needs_review::INTEGER) FROM predictions WHERE role = 'served'"))
    assert found.mean_confidence == pytest.approx(scalar(
        "SELECT avg(confidence) FROM predictions WHERE role = 'served'"))
    assert found.agreement_rate == pytest.approx(shadow_agreement())
    assert found.confidence["n"].sum() == SERVED
    assert found.classes.groupby("day")["share"].sum().tolist() == pytest.approx([1.0])
    batch = data.read(data.predictions, EVERYTHING, ("batch",))
    assert batch.total == scalar("SELECT count(*) FROM predictions WHERE role = 'batch'")
    assert batch.confidence.empty                      # nightly scoring records classes only


def test_alert_filters(filled: Path) -> None:
    everything = data.read(data.alerts, EVERYTHING, None)
    assert len(everything) == scalar("SELECT count(*) FROM alerts")
    critical = data.filter_alerts(everything, ["critical"])
    assert set(critical["severity"]) == {"critical"} and {"nightly_step"} <= set(critical["kind"])
    news = data.read(data.alerts, data.Filters(datasets=("news",)), "open")
    assert set(news["dataset"]) == {"news"}


def test_a_writer_makes_the_board_wait_briefly_then_say_busy(warehouse_path: Path) -> None:
    with writer_holding(warehouse_path):
        started = time.perf_counter()
        with pytest.raises(data.WarehouseBusy, match="the nightly run is writing") as busy:
            data.read(data.champions, EVERYTHING)
        assert time.perf_counter() - started < data.BUSY_WAIT_SECONDS + 3
        assert "PID" in busy.value.holder
        assert not data.is_free(warehouse_path)
    assert data.is_free(warehouse_path)


def test_board_command() -> None:
    command = board_command("127.0.0.1", 8765, headless=True)
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4] == str(app_path())
    assert " ".join(command[5:]) == ("--server.address 127.0.0.1 --server.port 8765 "
                                     "--server.headless true --browser.gatherUsageStats false")
    assert "--server.headless false" in " ".join(board_command(headless=False))


# ------------------------------------------------------------------------------- pages


def open_page(name: str) -> AppTest:
    """The board as Streamlit runs it (app.py and its navigation), on one page."""
    app = AppTest.from_file(str(app_path()), default_timeout=120)
    app.run()
    if name != "overview":
        app.switch_page(f"views/{name}.py").run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def texts(app: AppTest) -> str:
    parts = [e.value for kind in ("title", "subheader", "markdown", "caption", "info", "warning",
                                  "error", "success", "code")
             for e in getattr(app, kind)]
    parts += [f"{m.label}: {m.value}" for m in app.metric]
    return "\n".join(str(p) for p in parts)


def metrics(app: AppTest) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for metric in app.metric:
        found.setdefault(metric.label, []).append(metric.value)
    return found


def no_read_error(app: AppTest) -> None:
    assert not [e.value for e in app.error if "could not read" in e.value]


def test_overview_page(filled: Path) -> None:
    app = open_page("overview")
    shown = metrics(app)
    assert shown["Champion"] == [f"{d}-v1" for d in DATASETS]
    assert shown["Last night"] == [LAST_NIGHT]
    open_alerts = scalar("SELECT count(*) FROM alerts WHERE status = 'open'")
    assert shown["Open alerts"] == [str(open_alerts)]
    assert [s.value for s in app.subheader] == DATASETS
    assert f"Last night {LAST_NIGHT}" in texts(app)
    assert any(f"{FAILED[1]} failed" in e.value for e in app.error)
    assert app.sidebar.multiselect[0].value == DATASETS


def test_sidebar_filters_apply_to_the_pages(filled: Path) -> None:
    app = open_page("overview")
    app.sidebar.multiselect[0].set_value(["news"]).run()
    assert [s.value for s in app.subheader] == ["news"]
    first = date.fromisoformat(NIGHTS[0])
    app.sidebar.date_input[0].set_value((first, first)).run()
    assert f"Last night {NIGHTS[0]}" in texts(app) and f"Last night {LAST_NIGHT}" not in texts(app)


def test_nights_page(filled: Path) -> None:
    app = open_page("nights")
    no_read_error(app)
    assert len(app.get("plotly_chart")) == 2
    stages = app.dataframe[0].value
    stages = stages.set_index([stages["dataset"], stages["night_date"].astype(str).str[:10]])
    assert stages.loc[(FAILED[0], LAST_NIGHT), FAILED[1]] == "failed"
    night = app.selectbox(key="nights.night")
    assert night.value == date.fromisoformat(LAST_NIGHT)
    triggers = app.dataframe[2].value
    assert {"accuracy_drop", "data_drift", "model_age"} <= set(triggers["trigger"])


def test_performance_page(filled: Path) -> None:
    app = open_page("performance")
    no_read_error(app)
    expected = daily_performance("customer").iloc[-1]
    shown = metrics(app)
    assert shown["Accuracy"] == [f"{expected['accuracy']:.3f}"]
    assert shown["Labelled rows"] == [str(expected["n_labelled"])]
    assert len(app.get("plotly_chart")) == 2
    assert CHAMPION in set(app.dataframe[-1].value["model_version"])      # the switch table


def test_drift_page_embeds_the_evidently_report(filled: Path) -> None:
    app = open_page("drift")
    no_read_error(app)
    trend = data.read(data.drift_trend, EVERYTHING).set_index("dataset").loc["customer"]
    shown = metrics(app)
    assert shown["Drifted columns"] == [f"{trend['n_drifted']} of {trend['n_columns']}"]
    assert shown["Against"] == [CHAMPION]
    frame = app.get("iframe")[0].proto.srcdoc
    assert frame == data.read_report(Path(trend["html_path"])) and "Evidently" in frame
    assert app.get("download_button")[0].proto.label == "Download the Evidently report"
    assert len(app.get("plotly_chart")) == 2


def test_models_page(filled: Path) -> None:
    app = open_page("models")
    no_read_error(app)
    aliases = app.dataframe[0].value.set_index("alias")
    assert aliases.loc["champion", "model_version"] == CHAMPION
    assert app.selectbox(key="models.version").value == CHAMPION
    assert "best" in set(app.dataframe[2].value["significance"])
    assert "Summary" in app.get("iframe")[0].proto.srcdoc                   # the model report
    assert f"customer-{NIGHTS[0]}" in app.get("graphviz_chart")[0].proto.spec
    app.radio(key="models.report").set_value("Production report").run()
    assert not app.exception


def test_predictions_page(filled: Path) -> None:
    app = open_page("predictions")
    no_read_error(app)
    shown = metrics(app)
    assert shown["Predictions"] == [str(SERVED)]
    assert shown["Shadow agreement"] == [f"{shadow_agreement():.1%}"]
    assert len(app.get("plotly_chart")) == 6
    app.multiselect(key="predictions.roles").set_value(["batch"]).run()
    assert not app.exception
    batch = int(scalar("SELECT count(*) FROM predictions WHERE role = 'batch'"))
    assert metrics(app)["Predictions"] == [f"{batch:,}"]
    assert "carry no confidence" in texts(app)


def test_alerts_page(filled: Path) -> None:
    app = open_page("alerts")
    no_read_error(app)
    critical = scalar("SELECT count(*) FROM alerts WHERE status = 'open' AND severity = 'critical'")
    assert metrics(app)[":red[:material/error:] critical"] == [str(critical)]
    app.multiselect(key="alerts.severity").set_value(["critical"]).run()
    assert set(app.dataframe[0].value["severity"]) == {"critical"}
    app.radio(key="alerts.status").set_value("closed").run()
    assert not app.dataframe and "No closed alert matches" in texts(app)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_of_a_new_home_shows_the_first_run_command(home: Path, page: str) -> None:
    app = open_page(page)
    assert "overnight demo" in "\n".join(i.value for i in app.info)
    assert data.FIRST_RUN_COMMAND in [c.value for c in app.code]
    assert not app.error and not app.dataframe


def test_a_page_of_an_empty_warehouse_shows_the_first_run_command(warehouse_path: Path) -> None:
    app = open_page("models")
    assert data.FIRST_RUN_COMMAND in [c.value for c in app.code]


def test_a_page_says_busy_while_a_writer_holds_the_warehouse(warehouse_path: Path) -> None:
    with writer_holding(warehouse_path):
        app = open_page("overview")
    assert data.BUSY_MESSAGE in [w.value for w in app.warning]
    assert "checks again every" in texts(app)
