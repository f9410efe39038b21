"""The warehouse connection on Spark answers as DuckDB's does: the same SQL with the same
parameters gives the same rows, dtypes and fetch results, on a real local Spark session opened with
the settings of dbt's `spark` target."""

from __future__ import annotations

import datetime as dt
import pickle

import pandas as pd
import pytest

from ml.warehouse.engine import open_warehouse
from tests.helpers import run_python

pytestmark = pytest.mark.xdist_group("spark")

ORDERS = pd.DataFrame(
    {
        "customer_id": ["c1", "c2", "c1", "c3"],
        "amount": [10.0, 5.5, 2.5, 40.0],
        "ordered_at": pd.to_datetime(
            ["2026-10-30 10:00", "2026-10-30 23:30", "2026-10-31 01:00", "2026-11-01 00:00"]
        ).astype("datetime64[us]"),
    }
)
# (how the rows are fetched, the query, its parameters): DuckDB's named and positional markers.
QUERIES = [
    (
        "df",
        "select customer_id, sum(amount) as total, max(ordered_at) as last_ordered_at from orders "
        "where ordered_at < $end group by customer_id order by customer_id",
        {"end": dt.datetime(2026, 11, 1)},
    ),
    ("fetchone", "select count(*) from orders where amount > ?", [5.0]),
    ("fetchone", "select customer_id from orders where amount > ?", [1000.0]),
    ("fetchall", "select customer_id, amount from orders order by amount", None),
    # classify_rows's reference check (absent_from) over rows given as a UNION ALL, as a dbt unit
    # test's fixture gives them: Spark could not plan it until dbt's spark target excluded a rule.
    (
        "fetchall",
        "with landed as (select 'c1' as customer_id union all select 'c9' union all select cast(null as string)) "
        "select customer_id, case when customer_id is not null and not exists ("
        "select 1 from orders as parent_row where parent_row.customer_id = classified_row.customer_id"
        ") then 'unknown_customer' end as reason "
        "from landed as classified_row order by customer_id nulls first",
        None,
    ),
]


def answers(connection) -> list:
    connection.register("orders", ORDERS)
    found = []
    for fetch, query, params in QUERIES:
        result = connection.execute(query, params)
        found.append(getattr(result, fetch)())
    connection.unregister("orders")
    return found


SPARK_SIDE = """
import pickle, sys
from ml.warehouse.spark import SparkWarehouse
from tests.integration.test_spark_warehouse import answers
with SparkWarehouse() as connection:
    found = answers(connection)
    settings = {key: connection.session.conf.get(key) for key in
                ("spark.sql.session.timeZone", "spark.sql.warehouse.dir", "spark.sql.sources.partitionOverwriteMode")}
with open(sys.argv[1], "wb") as out:
    pickle.dump((found, settings), out)
"""


def test_spark_answers_the_stage_queries_as_duckdb_does(tmp_path):
    data_dir = tmp_path / "data"
    result = run_python(data_dir, SPARK_SIDE, str(tmp_path / "spark.pickle"), timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    spark_found, settings = pickle.loads((tmp_path / "spark.pickle").read_bytes())
    with open_warehouse(tmp_path / "duckdb.duckdb") as connection:
        duckdb_found = answers(connection)

    pd.testing.assert_frame_equal(spark_found[0], duckdb_found[0])
    assert spark_found[0]["last_ordered_at"].tolist() == [
        pd.Timestamp("2026-10-31 01:00"),
        pd.Timestamp("2026-10-30 23:30"),
    ]
    assert (
        spark_found[1:]
        == duckdb_found[1:]
        == [
            (3,),
            None,
            [("c1", 2.5), ("c2", 5.5), ("c1", 10.0), ("c3", 40.0)],
            [(None, None), ("c1", None), ("c9", "unknown_customer")],
        ]
    )
    # The session is dbt's `spark` target's: UTC, its warehouse under this data dir, ds partitions
    # replaced one by one.
    assert settings["spark.sql.session.timeZone"] == "UTC"
    assert settings["spark.sql.warehouse.dir"].removeprefix("file:") == str(data_dir / "spark" / "warehouse")
    assert settings["spark.sql.sources.partitionOverwriteMode"] == "dynamic"
