"""The import graph keeps the night's layers apart (issue 19).

The contracts live in pyproject.toml (`[tool.importlinter]`) and are checked by import-linter,
which reads every import, function-level ones included: warehouse imports nothing of ours;
models never import monitoring or orchestration; monitoring never imports orchestration;
serving is a leaf (the registry publishes, serving reads); and no package imports in a cycle
with its siblings. The second test proves the guard can fail: a copy of the tree with one
forbidden import and one cycle added breaks exactly those contracts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("warehouse", "models", "monitoring", "orchestration")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_the_tree_keeps_every_contract() -> None:
    out = lint_imports(REPO)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_a_forbidden_direction_or_a_cycle_breaks_the_contracts(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.parquet", "nltk_data"))
    settings = tmp_path / "warehouse" / "settings.py"
    settings.write_text(settings.read_text() + "\n\ndef _late() -> None:\n"
                        "    import orchestration.cli  # noqa: F401\n")
    spec = tmp_path / "models" / "data" / "spec.py"
    spec.write_text(spec.read_text() + "\n\ndef _cycle() -> None:\n"
                    "    import models.training.steps  # noqa: F401\n")
    out = lint_imports(tmp_path)
    assert out.returncode == 1
    assert "warehouse imports nothing of ours BROKEN" in out.stdout
    assert "no cycles between the packages of a layer BROKEN" in out.stdout
