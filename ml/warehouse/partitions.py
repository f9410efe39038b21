"""The tables that Python stages own: which exist, their DDL, and replacing one ds partition."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ml.warehouse.engine import open_warehouse


def existing_tables(connection, schema: str) -> set[str]:
    rows = connection.execute(
        "select table_name from information_schema.tables where table_schema = ?", [schema]
    ).fetchall()
    return {name for (name,) in rows}


def ensure_table(connection, ddl: str) -> None:
    """Run a table's DDL (create if missing, then any `add column if not exists` for older warehouses)."""
    for statement in ddl.split(";"):
        connection.execute(statement)


def replace_partition(
    table: str, ddl: str, ds: dt.date, rows: pd.DataFrame, order_by: str, purge_erased: bool = True
) -> None:
    """In one transaction: create the table if needed, replace its ds rows with `rows`, and purge
    erased customers from every ds (audit.erased_customers, the list the dbt marts purge with;
    `purge_erased=False` for tables without customers)."""
    with open_warehouse() as connection:
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
