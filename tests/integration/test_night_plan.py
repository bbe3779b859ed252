"""A night's plan from flow parameters: the night's date and the timeline's day 0 are read by
the one `parse_date` and the one `resolve_timeline` (issue 19)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from models.data.dates import DateError
from orchestration.flows import build_plan, demo_timeline_path


def test_timeline_day_0_is_the_given_start_else_the_night(tmp_path: Path) -> None:
    plan = build_plan("2026-01-03", ["customer"], demo_timeline_path())
    assert plan.night == date(2026, 1, 3) and plan.timeline is not None
    assert plan.timeline.start == date(2026, 1, 3)
    plan = build_plan("2026-01-03", ["customer"], demo_timeline_path(), "2026-01-01")
    assert plan.timeline is not None and plan.timeline.start == date(2026, 1, 1)
    own = tmp_path / "own.yaml"
    own.write_text("start: 2025-12-30\ndatasets: {}")
    plan = build_plan(date(2026, 1, 3), None, str(own))
    assert plan.timeline is not None and plan.timeline.start == date(2025, 12, 30)
    assert build_plan("2026-01-03").timeline is None


def test_a_bad_night_is_a_user_error() -> None:
    with pytest.raises(DateError, match="'2026-02-30' is not a date of the form YYYY-MM-DD"):
        build_plan("2026-02-30")
