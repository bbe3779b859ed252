"""Environment for Prefect's local (ephemeral) API, kept apart from the flows on purpose.

Prefect reads its settings when it is first imported, so these variables must be in the
environment before anything imports `prefect`; this module imports nothing of Prefect's.
"""

from __future__ import annotations

import os
from pathlib import Path


def prefect_home(home: Path) -> dict[str, str]:
    """Environment for Prefect's local (ephemeral) API under the data home, no telemetry.

    The ephemeral server's first start in a new PREFECT_HOME creates its database; on a busy
    2-core machine that took longer than Prefect's default 20 s wait, so it gets 120 s.
    `DO_NOT_TRACK=1` silences the usage-data notice that the analytics setting alone does not.
    """
    return {"PREFECT_HOME": str(home / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": os.environ.get(
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")}
