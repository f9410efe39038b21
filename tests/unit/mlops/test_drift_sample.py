"""The drift checks' bounded sample: about `size` rows, the same customers on every day of a window
and on both sides of a check, and everything when the table is small."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from ml.mlops.monitoring import customer_sample

DAY = dt.date(2026, 10, 31)


def table(customers: int, days: int) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    ids = [f"C{number:07d}" for number in range(customers)]
    rows = pd.DataFrame(
        {
            "customer_id": ids * days,
            "ds": [DAY - dt.timedelta(days=day) for day in range(days) for _ in ids],
        }
    )
    connection.register("rows", rows)
    connection.execute("create table scores as select * from rows")
    return connection


def test_a_large_table_keeps_about_the_size_asked_for_and_the_same_customers_every_day():
    connection = table(50_000, 3)
    start = DAY - dt.timedelta(days=2)
    kept = customer_sample(connection, "scores", "ds", start, DAY, 6_000)
    rows = connection.execute(
        f"select ds, customer_id from scores where ds between ? and ? and {kept}", [start, DAY]
    ).df()
    assert abs(len(rows) - 6_000) < 300  # a binomial draw around the size: sd ~ 75
    per_day = rows.groupby("ds")["customer_id"].apply(frozenset)
    assert per_day.nunique() == 1 and abs(len(per_day.iloc[0]) - 2_000) < 150  # days are strata of equal weight
    tonight = customer_sample(connection, "scores", "ds", DAY, DAY, 2_000)
    tonight_ids = set(
        connection.execute(f"select customer_id from scores where ds = ? and {tonight}", [DAY]).df()["customer_id"]
    )
    assert len(tonight_ids & per_day.iloc[0]) / len(tonight_ids) > 0.95  # the same customers on both sides


def test_a_small_table_is_read_whole():
    connection = table(500, 2)
    assert customer_sample(connection, "scores", "ds", DAY - dt.timedelta(days=1), DAY, 20_000) == "true"
