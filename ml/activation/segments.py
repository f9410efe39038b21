"""Segment filters: boolean SQL expressions over known columns, parsed and re-rendered by sqlglot.

A segment is written by a marketer in config and ends up in a WHERE clause, so it is parsed into a
syntax tree and every node is checked against an allowlist: comparisons, AND/OR/NOT, IN lists,
BETWEEN, LIKE, IS NULL, arithmetic, literals and known columns. Statements, subqueries, functions,
qualified names and anything else are refused. What reaches the warehouse is sqlglot's rendering
of the checked tree, never the text as written. The rendering is then bound by DuckDB against an
empty relation of the columns' types, so a type error (a text column compared with a number) is a
config error at load, not a failure two stages later. Segments longer than MAX_SEGMENT_CHARS or
nested deeper than the parser can follow are refused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

import duckdb
import sqlglot
from sqlglot import exp

from ml.errors import PlatformError

PREDICATES = (
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Boolean,
    exp.Column,  # a boolean column such as has_consent_email
)
ALLOWED = (
    *PREDICATES,
    exp.Paren,
    exp.Literal,
    exp.Null,
    exp.Identifier,
    exp.Neg,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
)


MAX_SEGMENT_CHARS = 4_000


class SegmentError(PlatformError, ValueError):
    """A segment filter is not a boolean expression over known columns."""


def compile_segment(text: str, known_columns: Iterable[str] | Mapping[str, str]) -> str:
    """The segment as DuckDB SQL, after checking it; raise SegmentError saying what is wrong.
    With `known_columns` as a mapping of column to SQL type, the expression is type-checked too."""
    known = set(known_columns)
    if len(text) > MAX_SEGMENT_CHARS:
        raise SegmentError(f"the segment has {len(text):,} characters (at most {MAX_SEGMENT_CHARS:,})")
    try:
        statements = [statement for statement in sqlglot.parse(text, read="duckdb") if statement is not None]
        compiled = _check(text, statements, known)
    except sqlglot.errors.SqlglotError as error:
        raise SegmentError(f"cannot parse {text!r}: {str(error).splitlines()[0]}") from None
    except RecursionError:
        raise SegmentError(f"{text[:60]!r}... is nested too deeply to read; write it flatter") from None
    if isinstance(known_columns, Mapping):
        _type_check(text, compiled, known_columns)
    return compiled


_CONDITIONS = threading.local()


def conditions_engine() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB, one per thread, that evaluates segment conditions (on no data but what a
    caller registers). Opening one costs about 15 ms and a condition under 2 ms; configuration checks
    every segment and a night evaluates one per audience and suppression, so they share it."""
    engine = getattr(_CONDITIONS, "engine", None)
    if engine is None:
        engine = _CONDITIONS.engine = duckdb.connect()
    return engine


def _type_check(text: str, compiled: str, types: Mapping[str, str]) -> None:
    """Run the expression on one row of the typed columns: DuckDB refuses, for example, a text
    column ordered against a number (when binding) or a number column compared with a word (when
    casting the word: hence a row with values, not an empty relation)."""
    sample = {"varchar": "'text'", "double": "1", "boolean": "true"}
    columns = ", ".join(f'cast({sample.get(kind, "null")} as {kind}) as "{name}"' for name, kind in types.items())
    try:
        conditions_engine().execute(
            f"select count(*) from (select {columns}) as population where {compiled}"
        ).fetchall()
    except duckdb.Error as error:
        message = str(error).splitlines()[0]
        raise SegmentError(f"{text!r} does not type-check: {message}") from None


def _check(text: str, statements: list, known: set[str]) -> str:
    """The checked tree rendered as DuckDB SQL; raise SegmentError at the first node not allowed."""
    if len(statements) != 1:
        raise SegmentError(f"{text!r} must be one expression, found {len(statements)} statements")
    tree = statements[0]
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if not isinstance(tree, PREDICATES):
        raise SegmentError(f"{text!r} is not a boolean expression (it is a {tree.key})")
    # The structure first (a subquery's columns are not the point), then the columns.
    for node in tree.walk():
        if not isinstance(node, ALLOWED):
            raise SegmentError(
                f"{text!r} uses {node.sql(dialect='duckdb')!r} ({node.key}): only comparisons, and/or/not, in, "
                "between, like, is null, arithmetic, literals and known columns are allowed"
            )
    for node in tree.find_all(exp.Column):
        if node.table:
            raise SegmentError(f"{text!r}: write the column {node.name!r} without a table name")
        if node.name not in known:
            raise SegmentError(f"{text!r}: unknown column {node.name!r}; known columns: {', '.join(sorted(known))}")
    return tree.sql(dialect="duckdb", comments=False)
