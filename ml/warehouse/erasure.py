"""Erasure beyond the warehouse: what a person must check, and the purges of what dbt does not own.

dbt keeps the erasure ledger (`audit.erasure_ledger`: every request ever seen, applied from then on
whether or not its landing file is still there) and removes erased customers from staging, the
marts and the quarantine. This module reports the requests that need a person, and removes erased
customers from the places outside the warehouse's dbt models:

- the Feast online store (`ml.mlops.feature_store.purge_online_store`, run by build_feature_store every
  night);
- published export folders and their staging leftovers (ml.activation.export);
- the model bundles of older MLflow versions (`ml.mlops.erasure.purge_model_artifacts`, a command: a
  bundle trained before a request still holds the id in its id maps; the next trained version does
  not, since training reads staging, which has no erased rows);
- the personal fields of raw.* and of the staging models that keep every landing row
  (`stg_*__checked`, `stg_*__classified`): `scrub_personal_fields`, run by build_staging every night
  after dbt. raw.* keeps each erased row (its ids, file and line: the lineage the reconciliations
  count) with its email, city, birth year and free text emptied.

    python -m ml erasure report                 # the requests a person must check
    python -m ml erasure purge-model-artifacts  # delete older bundles that hold erased ids
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

from ml.constants import SOURCE_FILE
from ml.warehouse.dialect import on_duckdb
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import existing_tables, table_columns

log = logging.getLogger(__name__)

LEDGER = "audit.erasure_ledger"
UNMATCHED = "audit.erasure_requests_unmatched"


@dataclass(frozen=True)
class ErasureProblem:
    """An erasure request a person must look at; `message` says what is wrong and what to do."""

    customer_id: str
    kind: str  # unreadable_date, near_match, no_such_customer
    message: str


def erasure_problems() -> list[ErasureProblem]:
    """Requests applied with an unreadable date, and requests whose id matches no customer exactly
    (with the near matches, suppressed from exports until a person confirms)."""
    with open_warehouse() as connection:
        if "erasure_ledger" not in existing_tables(connection, "audit"):
            return []
        unreadable = connection.execute(
            f"select customer_id, requested_at_text, source_file, source_row from {LEDGER} "
            "where is_requested_at_unreadable order by customer_id"
        ).fetchall()
        # A few rows per request: grouped here, in SQL both engines read the same way.
        unmatched_rows = connection.execute(
            f"select requested_customer_id, near_match_customer_id, source_file, source_row from {UNMATCHED}"
        ).fetchall()
    unmatched = []  # (requested id, its near matches, first file, first row): one per request
    for customer_id, group in itertools.groupby(sorted(unmatched_rows, key=lambda row: row[0]), key=lambda row: row[0]):
        rows = list(group)
        near_matches = ", ".join(sorted(row[1] for row in rows if row[1] is not None))
        unmatched.append((customer_id, near_matches, min(row[2] for row in rows), min(row[3] for row in rows)))
    problems = [
        ErasureProblem(
            customer_id,
            "unreadable_date",
            f"erasure request for {customer_id} ({source_file}, row {source_row}) has the date {text!r}, which "
            "cannot be read: the customer is erased all the same; correct the date at the source for the record",
        )
        for customer_id, text, source_file, source_row in unreadable
    ]
    for customer_id, near_matches, source_file, source_row in unmatched:
        if near_matches:
            problems.append(
                ErasureProblem(
                    customer_id,
                    "near_match",
                    f"erasure request for {customer_id!r} ({source_file}, row {source_row}) matches no customer "
                    f"exactly but nearly matches {near_matches}: they get no export until a person confirms; "
                    "re-land the request with the exact id to erase",
                )
            )
        else:
            problems.append(
                ErasureProblem(
                    customer_id,
                    "no_such_customer",
                    f"erasure request for {customer_id!r} ({source_file}, row {source_row}) matches no customer: "
                    "nothing to erase; it stays in the ledger and applies if that id ever lands",
                )
            )
    return problems


def log_erasure_problems(problems: list[ErasureProblem]) -> None:
    for problem in problems:
        log.warning("ERASURE NEEDS A PERSON: %s", problem.message)


# Per landing table, the fields that say who a person is or what they wrote (the ids stay: lineage).
PERSONAL_FIELDS = {"customers": ("email", "city", "birth_year"), "survey_responses": ("comment",)}
ERASED = "trim(customer_id) in (select customer_id from audit.erased_customers)"


def scrub_personal_fields() -> dict[str, int]:
    """Empty the personal fields of erased customers' rows in raw.* and in the staging models that keep
    every landing row (the parsed value and its landing text `raw_<field>`); returns rows scrubbed per
    table. Idempotent: rows already empty are not counted again."""
    scrubbed: dict[str, int] = {}
    with open_warehouse() as connection:
        if "erased_customers" not in existing_tables(connection, "audit"):
            return scrubbed
        for table, fields in PERSONAL_FIELDS.items():
            places = [("raw", table, fields)]
            for suffix in ("checked", "classified"):
                model = f"stg_{table}__{suffix}"
                if model in existing_tables(connection, "staging"):
                    places.append(("staging", model, tuple(f"{p}{f}" for f in fields for p in ("", "raw_"))))
            for schema, name, columns in places:
                if name not in stored_tables(connection, schema):
                    continue
                present = [c for c in columns if c in table_columns(connection, schema, name)]
                count = _scrub(connection, f"{schema}.{name}", present)
                if count:
                    scrubbed[f"{schema}.{name}"] = count
    if scrubbed:
        log.info("erasure: personal fields emptied in %s", scrubbed)
    return scrubbed


def stored_tables(connection, schema: str) -> set[str]:
    """The tables of `schema` that hold rows (a view holds none of its own: its tables are scrubbed)."""
    if not on_duckdb(connection):
        return existing_tables(connection, schema)
    rows = connection.execute(
        "select table_name from information_schema.tables where table_schema = ? and table_type = 'BASE TABLE'",
        [schema],
    ).fetchall()
    return {name for (name,) in rows}


def _scrub(connection, table: str, columns: list[str]) -> int:
    """Null `columns` of the erased customers' rows of `table`; how many rows held something."""
    if not columns:
        return 0
    holding = f"{ERASED} and ({' or '.join(f'{c} is not null' for c in columns)})"
    (count,) = connection.execute(f"select count(*) from {table} where {holding}").fetchone()
    if not count:
        return 0
    if on_duckdb(connection):
        connection.execute(f"update {table} set {', '.join(f'{c} = null' for c in columns)} where {holding}")
        return count
    # Spark's parquet tables cannot update rows: the table (or the source files' partitions that hold
    # such rows, for raw.*) is rewritten from a copy with the fields emptied.
    all_columns = table_columns(connection, *table.split("."))
    emptied = ", ".join(f"case when {ERASED} then null else {c} end as {c}" if c in columns else c for c in all_columns)
    work = f"{table}__scrub"
    connection.execute(f"drop table if exists {work}")
    partitioned = table.startswith("raw.")
    where = f" where {SOURCE_FILE} in (select {SOURCE_FILE} from {table} where {holding})" if partitioned else ""
    connection.execute(f"create table {work} using parquet as select {emptied} from {table}{where}")
    overwrite = f"insert overwrite table {table}" + (f" partition ({SOURCE_FILE})" if partitioned else "")
    connection.execute(f"{overwrite} select * from {work}")
    connection.execute(f"drop table {work}")
    return count


def erased_customer_ids() -> list[str]:
    """audit.erased_customers (empty before the first staging build)."""
    with open_warehouse() as connection:
        if "erased_customers" not in existing_tables(connection, "audit"):
            return []
        return [
            customer_id
            for (customer_id,) in connection.execute("select customer_id from audit.erased_customers").fetchall()
        ]
