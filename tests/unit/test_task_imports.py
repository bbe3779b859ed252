"""A Metaflow training task is a fresh process that pays for every import before its work
(issue 20: the import floor was most of the training overhead). A `train` task imports what
fitting one algorithm needs and not what only other steps or other algorithms need: no
DuckDB or settings machinery (the warehouse package loads its names on first use), no
calibration, ensemble, text-explanation, imbalanced-learn or NLTK modules until an
algorithm or strategy that uses them is built. Each probe is a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

NOT_FOR_EVERY_TASK = ("duckdb", "pydantic_settings", "warehouse.connection",
                      "sklearn.calibration", "sklearn.ensemble", "models.learning.text.explain",
                      "imblearn", "nltk")

PROBE = """
import json, sys
import models.training.flow, models.training.steps as steps
steps.import_for("train")
{then}
print(json.dumps([m for m in {modules!r} if m in sys.modules]))
"""


def loaded_after(then: str = "") -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(then=then,
                                                             modules=NOT_FOR_EVERY_TASK)],
                         capture_output=True, text=True, timeout=300,
                         env={"METAFLOW_DATASTORE_SYSROOT_LOCAL": "/nonexistent",
                              "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_a_train_task_imports_only_what_fitting_needs() -> None:
    assert loaded_after() == []


def test_what_an_algorithm_needs_is_imported_when_it_is_built() -> None:
    then = ("from models.learning.catalogue import get_algorithm\n"
            "get_algorithm('svm').estimator(); get_algorithm('random_forest').estimator()\n"
            "import warehouse; warehouse.get_settings")
    assert loaded_after(then) == ["pydantic_settings", "sklearn.calibration",
                                  "sklearn.ensemble"]
