"""Importing Metaflow in a process must not break generic classes defined after it.

Metaflow's vendored typing_extensions swaps `typing._collect_parameters` for a copy that does
not know the real typing_extensions' `NoDefault`; Prefect's flow engine, imported when the
first flow of a process runs after a training, then failed to define its generic classes.
Each probe runs in a fresh interpreter, where the import order is exactly the one written.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import typing_extensions
{first}
import prefect.flow_engine
print("flow engine imported")
"""


def probe(first: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE.format(first=first)],
                          capture_output=True, text=True, timeout=300)


def test_prefect_flow_engine_imports_after_our_metaflow_import() -> None:
    out = probe("from models.training.runner import import_metaflow; import_metaflow()")
    assert out.returncode == 0, out.stderr[-1500:]
    assert "flow engine imported" in out.stdout
    out = probe("from models.training.runner import import_metaflow\n"
                "import_metaflow().Runner('models/training/flow.py')")
    assert out.returncode == 0, out.stderr[-1500:]


def test_a_bare_metaflow_import_is_what_breaks_it() -> None:
    """The failure the guard prevents is real (if Metaflow stops doing it, drop the guard)."""
    out = probe("import metaflow._vendor.typing_extensions")
    assert out.returncode != 0
    assert "without a default follows type parameter with a default" in out.stderr
