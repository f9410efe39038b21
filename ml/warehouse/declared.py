"""The schema of every table the Python stages write, read from where dbt declares it.

`dbt_project/models/outputs/_python_outputs.yml` declares each of these tables as a dbt source, with
its columns, their `data_type`, a `not_null` constraint where a value is required and
`meta.primary_key`. That is the schema, written once: the stages create their tables from it
(`ddl`), the readouts list their columns from it (`column_names`), dbt tests and documents it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import yaml

from ml.paths import dbt_project_dir

OUTPUT_SOURCES = "models/outputs/_python_outputs.yml"


@dataclass(frozen=True)
class DeclaredColumn:
    name: str
    data_type: str
    not_null: bool


@dataclass(frozen=True)
class DeclaredTable:
    source: str  # the dbt source that declares it
    schema: str
    name: str
    columns: tuple[DeclaredColumn, ...]
    primary_key: tuple[str, ...] = ()

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def _column(table: str, column: dict) -> DeclaredColumn:
    if "data_type" not in column:
        raise ValueError(f"{OUTPUT_SOURCES}: {table}.{column['name']} has no data_type; declare it")
    constraints = {constraint["type"] for constraint in column.get("constraints") or []}
    return DeclaredColumn(column["name"], column["data_type"], "not_null" in constraints)


@functools.cache
def declared_tables() -> dict[str, DeclaredTable]:
    """Every declared table by its `schema.table` name, in the order the YAML lists them."""
    declared = yaml.safe_load((dbt_project_dir() / OUTPUT_SOURCES).read_text(encoding="utf-8"))
    tables = {}
    for source in declared["sources"]:
        for table in source["tables"]:
            name = f"{source['schema']}.{table['name']}"
            tables[name] = DeclaredTable(
                source["name"],
                source["schema"],
                table["name"],
                tuple(_column(name, column) for column in table.get("columns") or []),
                tuple((table.get("meta") or {}).get("primary_key") or ()),
            )
    return tables


def declared(table: str) -> DeclaredTable:
    """The declaration of `schema.table`; the error says where to declare a table that is missing."""
    try:
        return declared_tables()[table]
    except KeyError:
        raise KeyError(f"{table} is not declared in dbt_project/{OUTPUT_SOURCES}") from None


def column_names(table: str) -> list[str]:
    return [column.name for column in declared(table).columns]


def ddl(table: str) -> str:
    """`create table if not exists` with the declared columns, then `add column if not exists` for each
    column that may be NULL (a warehouse made by an older release gains the columns added since)."""
    declaration = declared(table)
    columns = [
        f"{column.name} {column.data_type}" + (" not null" if column.not_null else "") for column in declaration.columns
    ]
    if declaration.primary_key:
        columns.append(f"primary key ({', '.join(declaration.primary_key)})")
    statements = [
        f"create schema if not exists {declaration.schema}",
        f"create table if not exists {table} ({', '.join(columns)})",
        *(
            f"alter table {table} add column if not exists {column.name} {column.data_type}"
            for column in declaration.columns
            if not column.not_null
        ),
    ]
    return ";\n".join(statements)
