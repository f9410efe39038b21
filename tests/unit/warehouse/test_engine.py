"""Opening the warehouse: one way, with the settings dbt's profile gives its own connections."""

from __future__ import annotations

import datetime as dt
import time

import duckdb
import pandas as pd
import pytest

from ml.warehouse.engine import open_warehouse, read_frame


def test_timestamps_are_utc_whatever_the_host_time_zone(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        with open_warehouse(tmp_path / "w.duckdb") as connection:
            assert connection.execute("select current_setting('TimeZone')").fetchone()[0] == "UTC"
            assert read_frame(connection, "select current_setting('TimeZone') as zone")["zone"].tolist() == ["UTC"]
            # An instant with an offset, stored as the naive UTC timestamps of the warehouse.
            naive = connection.execute("select cast(timestamptz '2026-10-31 23:30:00+02:00' as timestamp)").fetchone()
            assert naive[0] == dt.datetime(2026, 10, 31, 21, 30)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_read_only_connection_cannot_write(tmp_path):
    with open_warehouse(tmp_path / "w.duckdb") as connection:
        connection.execute("create table t (x integer)")
    with open_warehouse(tmp_path / "w.duckdb", read_only=True) as connection:
        assert connection.execute("select count(*) from t").fetchone() == (0,)
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            connection.execute("insert into t values (1)")


def test_a_large_read_holds_each_repeated_string_once_with_the_dtypes_of_df(tmp_path):
    query = """
        select 'customer-' || (i % 3) as customer_id, timestamp '2026-10-31' + to_seconds(i) as occurred_at,
               cast(i as double) / 2 as quantity
        from range($rows) as t (i)
    """
    with open_warehouse(tmp_path / "w.duckdb") as connection:
        connection.execute("select * from range(10)").fetchone()  # leaves an unfinished result
        through_arrow = read_frame(connection, query, {"rows": 3_000})
        directly = connection.execute(query, {"rows": 3_000}).df()
    pd.testing.assert_frame_equal(through_arrow, directly)
    # Three customers over 3,000 rows: three string objects, not one per row as .df() makes them.
    assert len({id(value) for value in through_arrow["customer_id"]}) == 3
    assert len({id(value) for value in directly["customer_id"]}) > 3
