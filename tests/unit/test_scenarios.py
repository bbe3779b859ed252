from datetime import date, timedelta
from pathlib import Path

import pytest

from models.data.generators.base import DriftState
from models.data.scenarios import (
    DEMO_TIMELINE,
    SCENARIOS,
    ScenarioEntry,
    ScenarioError,
    Timeline,
    load_timeline,
    resolve_scenario,
    resolve_timeline,
    single_scenario,
)

START = date(2026, 1, 1)


def test_gradual_ramps_then_recovers_and_sudden_steps() -> None:
    timeline = Timeline(start=START, datasets={"customer": (
        ScenarioEntry(scenario="gradual_covariate_shift", from_day=2, to_day=5),
        ScenarioEntry(scenario="label_shift", from_day=3, to_day=3, magnitude=0.5),
    )})
    shift = [timeline.drift_for("customer", START + timedelta(days=d)).covariate_shift
             for d in range(8)]
    assert shift == [0, 0, 0.25, 0.5, 0.75, 1.0, 0, 0]
    assert timeline.drift_for("customer", START + timedelta(days=3)).label_shift == 0.5
    assert timeline.drift_for("news", START + timedelta(days=3)) == DriftState()
    assert timeline.label_for("customer", START + timedelta(days=3)) == (
        "gradual_covariate_shift+label_shift")
    assert timeline.label_for("customer", START) == "stable"


def test_demo_timeline_drifts_and_recovers_for_every_dataset() -> None:
    timeline = load_timeline(DEMO_TIMELINE).with_start(START)
    for dataset in ("customer", "medical", "news"):
        states = [timeline.drift_for(dataset, START + timedelta(days=d)) for d in range(7)]
        assert states[0].is_stable()
        assert any(not s.is_stable() for s in states), dataset
    assert timeline.drift_for("customer", START + timedelta(days=6)).is_stable()


def test_single_scenario_names() -> None:
    assert single_scenario("stable").is_stable()
    assert single_scenario("concept_drift", 0.5) == DriftState(concept_drift=0.5)
    assert set(SCENARIOS) >= {"stable", "gradual_covariate_shift", "sudden_covariate_shift",
                              "label_shift", "concept_drift", "new_vocabulary"}
    with pytest.raises(ScenarioError, match="unknown scenario 'meteor'"):
        single_scenario("meteor")


@pytest.mark.parametrize(("text", "message"), [
    ("datasets: {customer: [{scenario: meteor, from_day: 1, to_day: 2}]}", "unknown scenario"),
    ("datasets: {customer: [{scenario: label_shift, from_day: 3, to_day: 1}]}", "before"),
    ("datasets: [1, 2", "not valid YAML"),
])
def test_bad_timeline_files_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_timeline(path)


def test_json_timeline(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"start": "2026-01-01", "datasets": {"medical": '
                    '[{"scenario": "label_shift", "from_day": 0, "to_day": 0}]}}')
    assert load_timeline(path).drift_for("medical", START).label_shift == 1.0


def test_resolve_timeline_start_explicit_then_own_then_default(tmp_path: Path) -> None:
    own = tmp_path / "own.yaml"
    own.write_text("start: 2026-01-01\ndatasets: {}")
    bare = tmp_path / "bare.yaml"
    bare.write_text("datasets: {}")
    later = START + timedelta(days=5)
    assert resolve_timeline(own, start=later, default_start=START).start == later
    assert resolve_timeline(own, default_start=later).start == START
    assert resolve_timeline(bare, default_start=later).start == later
    assert resolve_timeline(bare).start is None


def test_resolve_scenario_name_or_timeline_file(tmp_path: Path) -> None:
    assert resolve_scenario("concept_drift", "customer", START, intensity=0.5) == (
        DriftState(concept_drift=0.5), "concept_drift")
    path = tmp_path / "t.yaml"
    path.write_text("datasets: {medical: [{scenario: label_shift, from_day: 2, to_day: 2}]}")
    day2 = START + timedelta(days=2)
    assert resolve_scenario(path, "medical", day2, start=START) == (
        DriftState(label_shift=1.0), "label_shift")
    with pytest.raises(ScenarioError, match="no start date"):
        resolve_scenario(path, "medical", day2)
    with pytest.raises(ScenarioError, match="neither a scenario"):
        resolve_scenario("meteor", "medical", day2)
