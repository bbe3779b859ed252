"""A real training run (Metaflow) calibrates conformal review sets at the policy's error rate:
the signed card holds the threshold of the served refit, calibrated with MAPIE on the
held-out half it never trained on; the model report states the coverage achieved next to the
old threshold's figures; a card whose threshold was changed is refused."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from models.data.batches import generate_batch
from models.data.generators import customer
from models.evaluation.conformal import ConformalRule, calibrate, calibration_part
from models.registry import manifest
from models.registry.artifacts import HOLDOUT_FILE
from models.registry.versions import get_version, load_model, promote
from models.serving.store import RefusedArtifact, load_verified

DAY = date(2026, 8, 1)


@pytest.mark.slow     # a real Metaflow training run
def test_a_run_calibrates_the_served_model_and_reports_coverage(warehouse_path: Path) -> None:
    from models.training.runner import run_training

    generate_batch("customer", DAY, n_rows=800, seed=5)
    outcome = run_training("customer", optimize=False, cv_folds=3, seed=3,
                           algorithms="logistic_regression,dummy", review_error_rate=0.2)
    version = get_version(outcome.model_version)
    entry = version.card["conformal"]
    rule = ConformalRule.from_card(version.card)
    assert rule is not None and rule.error_rate == 0.2 and rule.method == "lac"
    assert entry["calibration_rows"] == rule.n_calibration == 100      # half of 200 held out
    assert version.card["n_fit_rows"] == 800 - 100
    # the stored threshold is MAPIE's calibration of the served refit on that half
    served, _ = load_model(outcome.model_version)
    holdout = pd.read_parquet(version.artifact_path.parent / HOLDOUT_FILE)
    spec = customer.SPEC
    x_cal, y_cal, _, _ = calibration_part(holdout[spec.feature_names],
                                          holdout[spec.target].astype(str))
    again = calibrate(served, x_cal, y_cal, 0.2)
    assert again is not None and again.threshold == pytest.approx(rule.threshold)
    # the report states coverage on the other held-out half, next to the old rule
    figures = entry["held_out"]
    assert figures["n_rows"] == 100 and 0 < figures["coverage"] <= 1
    assert figures["coverage_low"] <= 0.8 <= figures["coverage_high"] or (
        figures["coverage"] >= 0.8)
    text = (Path(version.card["reports"]["model_report"]).parent / "report.md").read_text()
    section = text.split("## Conformal review")[1].split("\n## ")[0]
    assert "error rate 0.2" in section and f"{figures['coverage']:.1%}" in section
    assert f"{figures['mean_set_size']:.2f}" in section
    assert "confidence below 0.6 (old rule)" in section
    assert f"{figures['old_share_flagged']:.1%}" in section
    # the threshold is covered by the artifact's signature: a changed card is refused
    promote("customer", outcome.model_version, reason="test")
    good = manifest.publish_from_warehouse()["datasets"]["customer"]["champion"]
    assert load_verified("customer", "champion", good).card["conformal"] == entry
    forged = {**good, "card": {**good["card"], "conformal": {**entry, "threshold": 0.99}}}
    with pytest.raises(RefusedArtifact):
        load_verified("customer", "champion", forged)
