"""The logical date `ds` and the day boundaries every layer agrees on.

Only the orchestrator parses `ds` from text (a command line, an Airflow template); every stage takes it
as a `datetime.date`. The warehouse stores naive UTC timestamps, so a day ends at the next midnight.
"""

from __future__ import annotations

import datetime as dt


def as_ds(value: dt.date | str) -> dt.date:
    """`ds` as a date, from a date or its ISO text (YYYY-MM-DD); the error names the value."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as error:
        raise ValueError(f"ds must be a date YYYY-MM-DD, got {value!r}") from error


def end_of(ds: dt.date) -> dt.datetime:
    """The exclusive end of the day ds, as the naive UTC timestamps of the warehouse."""
    return dt.datetime.combine(ds + dt.timedelta(days=1), dt.time())
