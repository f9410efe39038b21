"""Segment filters: boolean SQL expressions over known columns, parsed and re-rendered by sqlglot.

A segment is written by a marketer in config and ends up in a WHERE clause, so it is parsed into a
syntax tree and every node is checked against an allowlist: comparisons, AND/OR/NOT, IN lists,
BETWEEN, LIKE, IS NULL, arithmetic, literals and known columns. Statements, subqueries, functions,
qualified names and anything else are refused. What reaches the warehouse is sqlglot's rendering
of the checked tree, never the text as written.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlglot
from sqlglot import exp

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


class SegmentError(ValueError):
    """A segment filter is not a boolean expression over known columns."""


def compile_segment(text: str, known_columns: Iterable[str]) -> str:
    """The segment as DuckDB SQL, after checking it; raise SegmentError saying what is wrong."""
    known = set(known_columns)
    try:
        statements = [statement for statement in sqlglot.parse(text, read="duckdb") if statement is not None]
    except sqlglot.errors.SqlglotError as error:
        raise SegmentError(f"cannot parse {text!r}: {str(error).splitlines()[0]}") from None
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
