"""The tables that Python stages own: which exist, their DDL, and replacing one ds partition.

A stage writes its output here and nowhere else, on either engine. The DDL is written once, in
DuckDB's dialect; on Spark it becomes a parquet table partitioned by `ds` (when it has one), so that
replacing a night is replacing its partition, as the dbt models do (`insert_overwrite`).
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd

from ml.warehouse.dialect import on_duckdb, spark_type
from ml.warehouse.engine import open_warehouse

ADD_COLUMN = re.compile(r"alter\s+table\s+(\S+)\s+add\s+column\s+if\s+not\s+exists\s+(\w+)\s+(.+)", re.I | re.S)
CREATE_TABLE = re.compile(r"create\s+table\s+if\s+not\s+exists\s+(\S+)\s*\((.*)\)\s*$", re.I | re.S)
# `not null` and keys are DuckDB's checks only.
DUCKDB_ONLY = (re.compile(r"\bnot\s+null\b", re.I), re.compile(r",\s*primary\s+key\s*\([^)]*\)", re.I))


def existing_tables(connection, schema: str) -> set[str]:
    if not on_duckdb(connection):
        return connection.tables(schema)
    rows = connection.execute(
        "select table_name from information_schema.tables where table_schema = ?", [schema]
    ).fetchall()
    return {name for (name,) in rows}


def table_columns(connection, schema: str, table: str) -> list[str]:
    """The columns of `schema.table`, in the table's order, on either engine."""
    if not on_duckdb(connection):
        return connection.columns(schema, table)
    rows = connection.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [schema, table],
    ).fetchall()
    return [name for (name,) in rows]


def spark_statement(statement: str, columns_of) -> str | None:
    """A DDL statement of ours in Spark's form: a parquet table partitioned by ds when it has one;
    `add column if not exists` as ADD COLUMNS when the column is missing (None when it is there).
    `columns_of(table)` gives a table's columns as they are now."""
    statement = re.sub(r"--[^\n]*", "", statement).strip()
    for pattern in DUCKDB_ONLY:
        statement = pattern.sub("", statement)
    added = ADD_COLUMN.match(statement)
    if added:
        table, column, column_type = added.groups()
        if column in columns_of(table):
            return None
        return f"alter table {table} add columns ({column} {spark_type(column_type.strip())})"
    created = CREATE_TABLE.match(statement)
    if created:
        table, columns = created.groups()
        partitioned = re.search(r"(^|,)\s*ds\s+date\b", columns, re.I) is not None
        return f"create table if not exists {table} ({spark_type(columns)}) using parquet" + (
            " partitioned by (ds)" if partitioned else ""
        )
    return statement


def ensure_table(connection, ddl: str) -> None:
    """Run a table's DDL (create if missing, then any `add column if not exists` for older warehouses)."""
    known: dict[str, list[str]] = {}  # on Spark, a table's columns are read once, not once per column

    def columns_of(table: str) -> list[str]:
        if table not in known:
            schema, name = table.split(".")
            known[table] = list(connection.columns(schema, name))
        return known[table]

    for statement in ddl.split(";"):
        if not statement.strip():
            continue
        if not on_duckdb(connection):
            statement = spark_statement(statement, columns_of)
            if statement is None:
                continue
        connection.execute(statement)


def replace_partition(
    table: str, ddl: str, ds: dt.date, rows: pd.DataFrame, order_by: str, purge_erased: bool = True
) -> None:
    """Create the table if needed, replace its ds rows with `rows`, and purge erased customers from
    every ds (audit.erased_customers, the list the dbt marts purge with; `purge_erased=False` for
    tables without customers). On DuckDB in one transaction; on Spark the ds partition is
    overwritten in one step (a rerun writes the same partition again)."""
    with open_warehouse() as connection:
        if not on_duckdb(connection):
            _replace_spark_partition(connection, table, ddl, ds, rows, order_by, purge_erased)
            return
        connection.execute("begin transaction")
        ensure_table(connection, ddl)
        connection.execute(f"delete from {table} where ds = ?", [ds])
        if purge_erased:
            connection.execute(
                f"delete from {table} where customer_id in (select customer_id from audit.erased_customers)"
            )
        if not rows.empty:
            connection.register("partition_rows", rows)
            connection.execute(f"insert into {table} by name select * from partition_rows order by {order_by}")
            connection.unregister("partition_rows")
        connection.execute("commit")


def replace_table(table: str, ddl: str, rows: pd.DataFrame) -> None:
    """Create the table if needed and replace all its rows with `rows`: for the small tables kept
    whole, not per ds (one transaction on DuckDB, one overwrite on Spark)."""
    with open_warehouse() as connection:
        if not on_duckdb(connection):
            ensure_table(connection, ddl)
            schema = connection.session.table(table).schema
            connection.register("table_rows", rows.reindex(columns=schema.fieldNames()), schema=schema)
            connection.execute(f"insert overwrite table {table} select * from table_rows")
            connection.unregister("table_rows")
            return
        connection.execute("begin transaction")
        ensure_table(connection, ddl)
        connection.execute(f"delete from {table}")
        if not rows.empty:
            connection.register("table_rows", rows)
            connection.execute(f"insert into {table} by name select * from table_rows")
            connection.unregister("table_rows")
        connection.execute("commit")


def _replace_spark_partition(connection, table, ddl, ds, rows, order_by, purge_erased) -> None:
    ensure_table(connection, ddl)
    if rows.empty:
        connection.execute(f"alter table {table} drop if exists partition (ds = '{ds.isoformat()}')")
    else:
        # The frame takes the table's types (and column order: Spark keeps the partition column last).
        schema = connection.session.table(table).schema
        frame = rows.reindex(columns=schema.fieldNames())
        connection.register("partition_rows", frame, schema=schema)
        connection.execute(
            f"insert overwrite table {table} partition (ds) select * from partition_rows order by {order_by}"
        )
        connection.unregister("partition_rows")
    if purge_erased:
        purge_spark_rows(connection, table, "customer_id in (select customer_id from audit.erased_customers)")


def delete_rows(connection, table: str, condition: str) -> int:
    """Delete the rows matching `condition` from a table of ours (partitioned by ds on Spark);
    returns how many."""
    if on_duckdb(connection):
        return connection.execute(f"delete from {table} where {condition}").fetchone()[0]
    (count,) = connection.execute(f"select count(*) from {table} where {condition}").fetchone()
    if count:
        purge_spark_rows(connection, table, condition)
    return count


def purge_spark_rows(connection, table: str, condition: str) -> None:
    """Remove the rows matching `condition` from a Spark table partitioned by ds: Spark's parquet
    tables cannot delete rows, so the partitions that hold such rows are copied without them to a
    work table and overwritten from it (a table cannot be overwritten from itself), as the dbt
    macro spark__purge_rows does for the marts; a partition left with no rows is dropped after."""
    affected = {row[0] for row in connection.execute(f"select distinct ds from {table} where {condition}").fetchall()}
    if not affected:
        return
    work_table = f"{table}__purge"
    connection.execute(f"drop table if exists {work_table}")
    connection.execute(
        f"create table {work_table} using parquet as select * from {table} "
        f"where ds in (select ds from {table} where {condition}) and not coalesce({condition}, false)"
    )
    kept = {row[0] for row in connection.execute(f"select distinct ds from {work_table}").fetchall()}
    connection.execute(f"insert overwrite table {table} partition (ds) select * from {work_table}")
    for partition in sorted(affected - kept):
        connection.execute(f"alter table {table} drop if exists partition (ds = '{partition.isoformat()}')")
    connection.execute(f"drop table {work_table}")
