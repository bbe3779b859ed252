"""The local Prefect environment reaches Prefect: its settings are read at import, so the
variables must be set before anything imports `prefect` (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
import orchestration.cli as cli
assert "prefect" not in sys.modules, "the command line imported prefect too early"
cli.use_local_prefect()
from prefect.settings import (PREFECT_HOME, PREFECT_SERVER_ANALYTICS_ENABLED,
                              PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)
print(json.dumps([str(PREFECT_HOME.value()), PREFECT_SERVER_ANALYTICS_ENABLED.value(),
                  PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()]))
"""


def test_local_prefect_settings_are_the_ones_prefect_uses(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "prefect").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["OVERNIGHT_HOME"] = str(home)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    prefect_home, analytics, startup = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(prefect_home) == home / "prefect"
    assert analytics is False and startup == 120
