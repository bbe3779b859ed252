"""The board and the CLI ask the warehouse one question: on the board's filled data home
(`board_home`, two real nights and served traffic with a challenger in shadow), the board's
shadow agreement and `overnight report shadow_agreement` give the same figures."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from monitoring.board import data
from tests.support.board_fixture import SERVED

pytestmark = pytest.mark.slow


def overnight(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("overnight") or str(Path(sys.executable).parent / "overnight")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


def test_board_and_cli_report_the_same_shadow_agreement(
        board_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERNIGHT_HOME", str(board_home))
    board = data.read(data.shadow_agreement, data.Filters())
    out = overnight("report", "shadow_agreement", "-f", "json")
    assert out.returncode == 0, out.stderr
    cli = pd.DataFrame(json.loads(out.stdout))
    assert int(board["pairs"].sum()) == SERVED and len(board) == len(cli) >= 1

    def rows(frame: pd.DataFrame, shadow: str, served: str) -> list[tuple[object, ...]]:
        return sorted(zip(pd.to_datetime(frame["day"]).dt.strftime("%Y-%m-%d"),
                          frame["dataset"], frame[shadow], frame[served],
                          frame["pairs"].astype(int), frame["agreement"].round(12), strict=True))

    assert rows(board, "shadow_version", "served_version") == rows(cli, "shadow", "served_by")
