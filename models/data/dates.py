"""The one way a date given as text becomes a `date`: command options, flow parameters and
training windows all read `YYYY-MM-DD` here, so they accept the same text and refuse the rest
with the same one-line message (naming the option when the caller gives one).

It lives in `models.data` because every layer that reads dates may import it (orchestration
and models; the warehouse reads none).
"""

from __future__ import annotations

from datetime import date
from typing import overload

from warehouse.errors import OvernightError


class DateError(OvernightError):
    """A text that is not a date of the form YYYY-MM-DD (the message names it)."""


@overload
def parse_date(value: str | date, option: str = "") -> date: ...
@overload
def parse_date(value: None, option: str = "") -> None: ...
@overload
def parse_date(value: str | date | None, option: str = "") -> date | None: ...
def parse_date(value: str | date | None, option: str = "") -> date | None:
    """`value` as a date (None stays None, a date passes through); `option` (e.g. "--start")
    names it in the error of a text that is not YYYY-MM-DD."""
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        named = f"{option} " if option else ""
        raise DateError(f"{named}{value!r} is not a date of the form YYYY-MM-DD") from None
