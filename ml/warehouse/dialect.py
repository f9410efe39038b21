"""The few places where DuckDB and Spark SQL differ and a stage's query needs both spellings.

The stages' SQL is written in what both engines read alike (Spark 4 takes most of DuckDB's forms:
`group by all`, `date + 1`, `filter (where ...)`, `min_by`, `qualify`, `::` casts); what they spell
differently is chosen here, by the connection the query runs on, so each difference is written once.
"""

from __future__ import annotations

import re

import duckdb

# DuckDB's type names in our DDL and queries, and what Spark calls them.
SPARK_TYPES = (
    (re.compile(r"\bvarchar\[\]", re.I), "array<string>"),
    (re.compile(r"\bdouble\[\]", re.I), "array<double>"),
    (re.compile(r"\b(varchar|json)\b", re.I), "string"),
)


def on_duckdb(connection) -> bool:
    return isinstance(connection, duckdb.DuckDBPyConnection)


def spark_type(duckdb_type: str) -> str:
    for pattern, name in SPARK_TYPES:
        duckdb_type = pattern.sub(name, duckdb_type)
    return duckdb_type


def elements(connection, array: str) -> str:
    """One row per element of `array`, in a select list (DuckDB's unnest, Spark's explode)."""
    return f"{'unnest' if on_duckdb(connection) else 'explode'}({array})"


def row_fingerprint_sum(connection) -> str:
    """An aggregate SQL expression over every column of the rows of a group, as text: it changes
    when any row of the group changes. Each engine hashes with its own function, so fingerprints
    compare within one engine's warehouse only."""
    if on_duckdb(connection):
        return "sum(hash(*columns(*)))::varchar"
    return "cast(sum(cast(hash(*) as decimal(38, 0))) as string)"
