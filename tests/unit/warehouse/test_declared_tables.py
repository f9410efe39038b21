"""The tables the Python stages write take their schema from their dbt declaration
(dbt_project/models/outputs/_python_outputs.yml, ml.warehouse.declared): one place for a column."""

from __future__ import annotations

import duckdb
import pytest

from ml.activation.export import channel_ddl
from ml.orchestration.config import load_config
from ml.warehouse.declared import column_names, ddl, declared, declared_tables
from ml.warehouse.partitions import spark_statement

CHANNELS = "channels"
OWN_TABLES = [name for name, table in declared_tables().items() if table.source != CHANNELS]


def shape(connection, table: str) -> list[tuple[str, str, bool]]:
    schema, name = table.split(".")
    return connection.execute(
        "select column_name, lower(data_type), is_nullable = 'NO' from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, name],
    ).fetchall()


@pytest.mark.parametrize("table", OWN_TABLES)
def test_a_stage_creates_its_table_with_the_declared_columns(table):
    with duckdb.connect() as connection:
        for statement in ddl(table).split(";"):
            connection.execute(statement)
        assert shape(connection, table) == [
            (column.name, column.data_type, column.not_null) for column in declared(table).columns
        ]


def test_a_warehouse_made_before_a_column_was_declared_gains_it():
    """The DDL adds every nullable column a table lacks: a warehouse of an older release is migrated."""
    table = "activation.audience_status"
    with duckdb.connect() as connection:
        connection.execute("create schema activation")
        connection.execute(
            f"create table {table} (ds date not null, audience varchar not null, status varchar not null)"
        )
        for statement in ddl(table).split(";"):
            connection.execute(statement)
        assert [name for name, _, _ in shape(connection, table)] == column_names(table)


def test_every_channel_table_has_the_declared_columns_of_a_channel():
    """A channel's columns follow its `fields` in the configuration; the declared ones are in every
    channel, with the declared types."""
    activation = load_config().activation
    for channel in activation.channels:
        with duckdb.connect() as connection:
            for statement in channel_ddl(activation, channel).split(";"):
                if statement.strip():
                    connection.execute(statement)
            made = {
                name: (data_type, not_null) for name, data_type, not_null in shape(connection, f"channels.{channel}")
            }
        for column in declared(f"channels.{channel}").columns:
            assert made[column.name] == (column.data_type, column.not_null), (channel, column.name)


def test_on_spark_the_declared_ddl_becomes_a_partitioned_parquet_table_and_its_migrations_are_skipped():
    table = "experiments.versions"  # a primary key, not-null columns and nullable ones
    statements = [statement.strip() for statement in ddl(table).split(";")]
    created = spark_statement(statements[1], lambda name: [])
    assert created.startswith(f"create table if not exists {table} (") and created.endswith("using parquet")
    assert "not null" not in created and "primary key" not in created
    present = column_names(table)
    assert [spark_statement(statement, lambda name: present) for statement in statements[2:]] == [None] * (
        len(statements) - 2
    )


def test_an_undeclared_table_names_the_file_to_declare_it_in():
    with pytest.raises(KeyError, match=r"_python_outputs\.yml"):
        ddl("marts.nowhere")
