"""The retraining-policy backtest and `overnight simulate`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import yaml

from models.data.scenarios import ScenarioEntry, Timeline
from monitoring.backtest import simulate

START = date(2026, 11, 16)


def test_policies_differ_as_they_should() -> None:
    timeline = Timeline(start=START, datasets={"customer": (
        ScenarioEntry(scenario="concept_drift", from_day=2, to_day=4),)})
    results = {r.policy: r for r in simulate("customer", timeline, 5, start=START, rows=500,
                                             schedule_days=2)}
    assert [results[p].retrains for p in ("never", "every_night", "schedule")] == [1, 5, 3]
    drift_night = results["triggers"].nights[2]
    assert drift_night.retrained and "accuracy drop" in drift_night.reason
    never = results["never"].summary()
    assert never["worst_accuracy"] < results["every_night"].summary()["mean_accuracy"]
    assert all(n.accuracy is None for n in (r.nights[0] for r in results.values()))


def test_simulate_command_writes_table_plot_and_json(home: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "t.yaml"
    scenario.write_text(yaml.safe_dump({"datasets": {"medical": [
        {"scenario": "label_shift", "from_day": 1, "to_day": 2}]}}))
    out = subprocess.run([str(Path(sys.executable).parent / "overnight"), "simulate",
                          "--scenario", str(scenario), "--nights", "3", "--dataset", "medical",
                          "--rows", "600", "--format", "json"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    rows = {r["policy"]: r for r in json.loads(out.stdout)}
    assert set(rows) == {"never", "every_night", "schedule", "triggers"}
    assert rows["never"]["worst_rare_recall"] is not None      # rare-class recall for medical
    folder = home / "reports" / "backtest"
    assert (folder / "backtest-medical.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((folder / "backtest-medical.json").read_text())["dataset"] == "medical"
