"""One `parse_date` for command options, flow parameters and training windows (issue 19)."""

from __future__ import annotations

from datetime import date

import pytest

from models.data.dates import DateError, parse_date
from warehouse.errors import OvernightError


def test_text_dates_and_dates_and_none() -> None:
    assert parse_date("2026-11-16") == date(2026, 11, 16)
    assert parse_date(date(2026, 1, 2)) == date(2026, 1, 2)
    assert parse_date(None) is None


def test_a_bad_date_is_one_user_error_naming_the_option() -> None:
    with pytest.raises(DateError, match=r"^--start 'yesterday' is not a date of the form "
                                        r"YYYY-MM-DD$"):
        parse_date("yesterday", "--start")
    with pytest.raises(OvernightError, match=r"^'2026-13-01' is not a date"):
        parse_date("2026-13-01")
