"""Frames built from Python lists, typed where they are made.

pandas infers a column's type from its values, so a frame made from an empty list of customer ids
has a float (or typeless) column, and a query joining it to a text column fails on an empty night
("Cannot compare values of type VARCHAR and DOUBLE"). Every frame the platform builds from Python
rows names its columns' SQL types here, once, and gets the same types with no rows as with many.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

# SQL type (DuckDB's spelling, as the tables' DDL) -> the pandas dtype a column of it is built with.
# Text is pandas' string dtype: DuckDB and Spark both read it as text, with rows or without.
PANDAS_DTYPES = {
    "varchar": "string",
    "text": "string",
    "double": "float64",
    "float": "float64",
    "bigint": "Int64",
    "integer": "Int64",
    "boolean": "boolean",
    "date": "object",  # datetime.date values, as the tables' ds columns are read back
    "timestamp": "datetime64[us]",
    "timestamptz": "datetime64[us, UTC]",
    "varchar[]": "object",  # lists of text
    "double[]": "object",  # lists of numbers
}


def pandas_dtype(sql_type: str) -> str:
    """The pandas dtype of a column of `sql_type`; an unknown type is a programming error."""
    key = sql_type.strip().lower()
    if key.startswith("decimal"):
        return "float64"
    if key not in PANDAS_DTYPES:
        raise KeyError(f"no pandas dtype for SQL type {sql_type!r}: add it to ml.warehouse.frames.PANDAS_DTYPES")
    return PANDAS_DTYPES[key]


def typed_frame(rows: Iterable | Mapping[str, Iterable], columns: Mapping[str, str]) -> pd.DataFrame:
    """A frame of `rows` (records, tuples in column order, or a mapping of column to values) with
    exactly `columns` ({name: SQL type}), each of its type whether there are rows or not."""
    if isinstance(rows, Mapping):
        frame = pd.DataFrame({name: pd.Series(list(rows.get(name, [])), dtype=object) for name in columns})
    else:
        frame = pd.DataFrame(list(rows), columns=list(columns))
    return frame.astype({name: pandas_dtype(sql_type) for name, sql_type in columns.items()})


def text_frame(column: str, values: Iterable[str]) -> pd.DataFrame:
    """One text column of `values` (ids to join on): text even when there are none."""
    return typed_frame({column: values}, {column: "varchar"})
