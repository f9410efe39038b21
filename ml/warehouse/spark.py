"""The warehouse on Spark, behind the connection API the Python stages use with DuckDB.

The stages call five things on a warehouse connection: `execute(sql, params)` (or `sql`) and then
`.df()`, `.fetchall()`, `.fetchone()` or `.to_arrow_table()` on the result; `register` and
`unregister` a DataFrame under a name; `executemany`. `SparkWarehouse` gives them the same on a
Spark session, so a stage's Python does not change with the engine; `open_warehouse`
(ml.warehouse.engine) returns one when `PZ_WAREHOUSE_ENGINE=spark`. A stage's SQL runs on both
engines: most of it is written in what both read alike; the few forms they spell differently are in
ml.warehouse.dialect, and what Spark's parquet tables cannot do (transactions, `delete`) is done
another way by the two writers, the landing loader and ml.warehouse.partitions.

The session is the one dbt's `spark` target opens (dbt_project/profiles.yml, output `spark`): the same
master, catalog, warehouse directory and settings, read from that file so they are written once.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import pandas as pd

from ml.paths import data_dir, dbt_project_dir

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

SPARK_TARGET = "spark"
# DuckDB's named parameters ($name) become Spark's (:name), its numbered ones ($1) named ones (:p1);
# positional `?` is the same in both.
DUCKDB_NAMED_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
DUCKDB_NUMBERED_PARAMETER = re.compile(r"\$([0-9]+)")


def spark_settings() -> dict[str, str]:
    """The Spark settings of dbt's `spark` target, with its env_var() calls resolved as dbt would
    (PZ_DATA_DIR defaulting to the platform's data dir, not to a path relative to dbt's cwd)."""
    import jinja2
    import yaml

    def env_var(name: str, default: str | None = None) -> str:
        if name == "PZ_DATA_DIR":
            return os.environ.get(name, str(data_dir()))
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise KeyError(f"dbt_project/profiles.yml needs the environment variable {name}: set it")
        return default

    text = (dbt_project_dir() / "profiles.yml").read_text(encoding="utf-8")
    profiles = yaml.safe_load(jinja2.Template(text).render(env_var=env_var))
    (profile,) = profiles.values()
    return {key: str(value) for key, value in profile["outputs"][SPARK_TARGET]["server_side_parameters"].items()}


def spark_session() -> SparkSession:
    """The process's Spark session, as dbt-spark's `session` method builds it (Hive catalog on)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.enableHiveSupport()
    for key, value in spark_settings().items():
        builder = builder.config(key, value)
    # Arrow moves pandas frames in and out of the JVM in columnar batches instead of row by row.
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
    return builder.getOrCreate()


def spark_parameters(query: str, params: dict | list | tuple | None) -> tuple[str, dict | list | None]:
    """The query and its parameters in Spark's form: `$name` markers become `:name`, `$1` `:p1`."""
    if params is not None and isinstance(params, list | tuple) and DUCKDB_NUMBERED_PARAMETER.search(query):
        return DUCKDB_NUMBERED_PARAMETER.sub(r":p\1", query), {f"p{i}": v for i, v in enumerate(params, start=1)}
    if params is None or isinstance(params, list | tuple):
        return query, list(params) if params is not None else None
    return DUCKDB_NAMED_PARAMETER.sub(r":\1", query), dict(params)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


class SparkResult:
    """What `execute` returns: the rows of one statement, fetched as the DuckDB result would be."""

    def __init__(self, frame: DataFrame):
        self._frame = frame

    def to_arrow_table(self) -> pa.Table:
        return self._frame.toArrow()

    def df(self) -> pd.DataFrame:
        """The rows as DuckDB's `.df()` gives them: Spark's timestamps (instants, shown in the
        session's UTC) become the naive UTC timestamps the warehouse holds on DuckDB."""
        frame = self.to_arrow_table().to_pandas(split_blocks=True, self_destruct=True)
        for column in frame.columns:
            if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
        return frame

    def fetchall(self) -> list[tuple]:
        return [tuple(row) for row in self._frame.collect()]

    def fetchone(self) -> tuple | None:
        rows = self._frame.take(1)
        return tuple(rows[0]) if rows else None


class SparkWarehouse:
    """A warehouse connection on a Spark session; a context manager like DuckDB's connection. The
    session outlives the connection: a stage opens the warehouse several times, and starting the
    JVM again each time would cost seconds."""

    def __init__(self, session: SparkSession | None = None):
        self.session = session or spark_session()

    def execute(self, query: str, params: dict | list | tuple | None = None) -> SparkResult:
        spark_query, args = spark_parameters(query, params)
        return SparkResult(self.session.sql(spark_query, args=args))

    sql = execute

    def executemany(self, query: str, rows) -> None:
        for row in rows:
            self.execute(query, row)

    def register(self, name: str, frame: pd.DataFrame | pa.Table, schema: StructType | None = None) -> None:
        """`frame` as a view called `name`; with `schema`, in those types (a column that is all
        missing has no type of its own to infer). A missing list in pandas is often NaN, which
        DuckDB reads as NULL and Spark's conversion cannot iterate: it becomes None."""
        if schema is not None and isinstance(frame, pd.DataFrame):
            from pyspark.sql.types import ArrayType

            lists = [field.name for field in schema.fields if isinstance(field.dataType, ArrayType)]
            if lists:
                frame = frame.assign(
                    **{
                        column: frame[column].map(lambda value: None if _is_missing(value) else value)
                        for column in lists
                    }
                )
        self.session.createDataFrame(frame, schema=schema).createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        self.session.catalog.dropTempView(name)

    def tables(self, schema: str) -> set[str]:
        """The tables of `schema` (none when it does not exist)."""
        if not self.session.catalog.databaseExists(schema):
            return set()
        return {table.name for table in self.session.catalog.listTables(schema) if not table.isTemporary}

    def columns(self, schema: str, table: str) -> list[str]:
        """The columns of `schema.table` in the table's order (a partition column comes last)."""
        return self.session.table(f"{schema}.{table}").columns

    def close(self) -> None:
        """Nothing to release per connection (see the class)."""

    def __enter__(self) -> SparkWarehouse:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
