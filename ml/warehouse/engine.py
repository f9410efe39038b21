"""The warehouse, opened one way by every stage that reads or writes it.

Every Python stage opens the warehouse here and nowhere else, so what a connection is (the file, its
settings, and later another engine) is decided in one place.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from ml.paths import warehouse_path


def open_warehouse(path: Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse file (`warehouse_path()` unless `path` is given), to use as a
    context manager: `with open_warehouse() as connection: ...` closes it at the end.

    Timestamps without an offset are UTC, as in dbt's profile (dbt_project/profiles.yml) and the
    landing contract, whatever the host's time zone. Read-write unless asked: in one process (the
    in-process pipeline), dbt-duckdb still holds the file open read-write, and DuckDB refuses a second
    connection to it with another configuration."""
    connection = duckdb.connect(str(path or warehouse_path()), read_only=read_only)
    set_session(connection)
    return connection


def set_session(connection: duckdb.DuckDBPyConnection) -> None:
    """The session settings every connection and cursor gets (a cursor does not inherit them)."""
    connection.execute("set TimeZone = 'UTC'")


def read_frame(connection: duckdb.DuckDBPyConnection, query: str, params: dict | list | None = None) -> pd.DataFrame:
    """The query's rows as a DataFrame, by way of Arrow, for the large reads.

    DuckDB's own `.df()` makes a Python string per row and column, so an id repeated over 30M
    interaction rows is held 30M times (about 5 GB at 1M customers); Arrow's conversion keeps one
    object per distinct string. Same dtypes as `.df()` for strings, timestamps and doubles (dates
    would come back as objects: read those with `.df()`). The Arrow table is freed while it converts.

    On a cursor of its own: the relation API (`sql`, which converts without the extra copy of
    `execute(...).to_arrow_table()`) refuses to run while the connection holds an unfinished result,
    as a `fetchone()` leaves one."""
    with connection.cursor() as cursor:
        set_session(cursor)
        table = cursor.sql(query, params=params).to_arrow_table()
    return table.to_pandas(split_blocks=True, self_destruct=True)
