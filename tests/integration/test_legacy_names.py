"""Artifacts saved before the stage-package layout still load and predict the same (issue 19).

The fixture was pickled by the previous layout (`models.text.TextCleaner`,
`models.imbalance.ThresholdTunedClassifier` / `CostSensitiveClassifier`,
`models.features.finite_or_nan`): a naive Bayes news model with NLTK cleaning and tuned
thresholds, and a cost-sensitive medical model, each with five rows and the labels it gave them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "support" / "fixtures" / \
    "legacy_layout_models.joblib"

# A fresh interpreter: no module of ours is imported before the artifact is unpickled.
PROBE = """
import sys
from pathlib import Path
from models.registry.legacy_names import unpickle
saved = unpickle(Path(sys.argv[1]).read_bytes())
for name, (model, rows, labels) in sorted(saved.items()):
    assert [str(v) for v in model.predict(rows)] == [str(v) for v in labels], name
    print(name, type(model).__module__, type(model).__name__)
"""


def test_a_model_pickled_by_the_old_layout_loads_and_predicts_the_same() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, str(FIXTURE)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.split("\n")
    assert "medical models.learning.imbalance CostSensitiveClassifier" in lines
    assert "news models.learning.imbalance ThresholdTunedClassifier" in lines


def test_only_the_listed_old_names_are_answered() -> None:
    from models.registry import legacy_names

    legacy_names.install()
    legacy_names.install()
    assert sum(isinstance(f, legacy_names.LegacyModuleFinder) for f in sys.meta_path) == 1
    with pytest.raises(ModuleNotFoundError):
        __import__("models.not_a_module_we_had")
    old = __import__("models.text", fromlist=["TextCleaner"])
    from models.learning.text.cleaner import TextCleaner

    assert old.TextCleaner is TextCleaner
