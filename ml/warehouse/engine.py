"""The warehouse, opened one way by every stage that reads or writes it.

Every Python stage opens the warehouse here and nowhere else, so what a connection is (the engine,
its file or session, its settings) is decided in one place. One setting chooses the engine for the
whole night: `PZ_WAREHOUSE_ENGINE`, `duckdb` (the embedded default: the file
$PZ_DATA_DIR/warehouse.duckdb) or `spark` (a Spark session with dbt's `spark` target settings,
ml.warehouse.spark). dbt reads the same variable to pick its target (dbt_project/profiles.yml).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from ml.errors import ConfigError, PlatformError
from ml.paths import warehouse_path
from ml.warehouse.dialect import on_duckdb

if TYPE_CHECKING:
    from ml.warehouse.spark import SparkWarehouse

ENGINE_VARIABLE = "PZ_WAREHOUSE_ENGINE"
ENGINES = ("duckdb", "spark")


def warehouse_engine() -> str:
    """The engine the warehouse runs on: `PZ_WAREHOUSE_ENGINE`, `duckdb` when unset."""
    engine = os.environ.get(ENGINE_VARIABLE, "").strip().lower() or "duckdb"
    if engine not in ENGINES:
        raise ConfigError(
            f"{ENGINE_VARIABLE}={os.environ[ENGINE_VARIABLE]!r} is not an engine of the warehouse: set it to "
            f"{' or '.join(ENGINES)} (unset: duckdb)."
        )
    return engine


# What DuckDB says of a file that is not (or no longer) a database: a retry cannot fix it.
UNREADABLE_FILE = ("not a valid DuckDB database file", "Corrupt database file", "checksum")


class WarehouseUnreadableError(PlatformError):
    """The warehouse file exists but is not a readable DuckDB database."""


def on_spark() -> bool:
    return warehouse_engine() == "spark"


def open_warehouse(path: Path | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection | SparkWarehouse:
    """A connection to the warehouse, to use as a context manager: `with open_warehouse() as
    connection: ...` closes it at the end.

    On DuckDB: the file (`warehouse_path()` unless `path` is given). Timestamps without an offset are
    UTC, as in dbt's profile (dbt_project/profiles.yml) and the landing contract, whatever the host's
    time zone. Read-write unless asked: in one process (the in-process pipeline), dbt-duckdb still
    holds the file open read-write, and DuckDB refuses a second connection to it with another
    configuration. On Spark: the process's session (`path` and `read_only` do not apply: the
    catalog is the session's)."""
    if on_spark():
        from ml.warehouse.spark import SparkWarehouse

        return SparkWarehouse()
    location = path or warehouse_path()
    try:
        connection = duckdb.connect(str(location), read_only=read_only)
    except duckdb.IOException as error:
        if not any(sign in str(error) for sign in UNREADABLE_FILE):
            raise  # a lock held by another process passes: the task's retry is right for it
        raise WarehouseUnreadableError(
            f"the warehouse file {location} cannot be read ({error}). Restore it from a backup "
            "(docs/deploy.md, 'Back up and restore') or move it aside and rebuild with --full-refresh; "
            "retrying will not help"
        ) from error
    set_session(connection)
    return connection


def warehouse_location() -> str:
    """Where the warehouse's tables are, to tell a person: the DuckDB file, or the Spark warehouse
    directory and its engine."""
    if on_spark():
        from ml.warehouse.spark import spark_settings

        settings = spark_settings()
        return f"{settings['spark.sql.warehouse.dir']} (Spark, {settings['spark.master']})"
    return str(warehouse_path())


def set_session(connection: duckdb.DuckDBPyConnection) -> None:
    """The session settings every connection and cursor gets (a cursor does not inherit them)."""
    connection.execute("set TimeZone = 'UTC'")


def read_frame(
    connection: duckdb.DuckDBPyConnection | SparkWarehouse, query: str, params: dict | list | None = None
) -> pd.DataFrame:
    """The query's rows as a DataFrame, by way of Arrow, for the large reads.

    DuckDB's own `.df()` makes a Python string per row and column, so an id repeated over 30M
    interaction rows is held 30M times (about 5 GB at 1M customers); Arrow's conversion keeps one
    object per distinct string. Same dtypes as `.df()` for strings, timestamps and doubles (dates
    would come back as objects: read those with `.df()`). The Arrow table is freed while it converts.

    On DuckDB, on a cursor of its own: the relation API (`sql`, which converts without the extra copy
    of `execute(...).to_arrow_table()`) refuses to run while the connection holds an unfinished
    result, as a `fetchone()` leaves one. On Spark the executors send Arrow batches to the driver."""
    if not on_duckdb(connection):
        return connection.execute(query, params).df()
    with connection.cursor() as cursor:
        set_session(cursor)
        table = cursor.sql(query, params=params).to_arrow_table()
    return table.to_pandas(split_blocks=True, self_destruct=True)
