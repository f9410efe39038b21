"""What a run produced for `ds`, as a short text report (printed by `make demo`)."""

from __future__ import annotations

import duckdb

from ml.config import data_dir, warehouse_path


def summary_text(ds: str) -> str:
    # Same configuration as dbt-duckdb's connection in this process (DuckDB refuses a second mode).
    with duckdb.connect(str(warehouse_path())) as connection:
        reconciliation = connection.execute(
            "select * from audit.landing_reconciliation where ds = ? order by table_name", [ds]
        ).df()
        reasons = connection.execute(
            """
            select table_name, reason_code, count(*) as row_count
            from (
                select table_name, reason_code from quarantine.customers where ds = $1
                union all select table_name, reason_code from quarantine.items where ds = $1
                union all select table_name, reason_code from quarantine.orders where ds = $1
                union all select table_name, reason_code from quarantine.order_items where ds = $1
                union all select table_name, reason_code from quarantine.events where ds = $1
                union all select table_name, reason_code from quarantine.survey_responses where ds = $1
                union all select table_name, reason_code from quarantine.consents where ds = $1
                union all select table_name, reason_code from quarantine.erasure_requests where ds = $1
            )
            group by all order by table_name, reason_code
            """,
            [ds],
        ).df()
    lines = [f"Landing for ds={ds} (warehouse {warehouse_path()})", ""]
    header = f"{'table':<18}{'read':>10}{'accepted':>10}{'rejected':>10}{'duplicate':>10}{'later':>8}{'erased':>8}  ok"
    lines.append(header)
    for row in reconciliation.itertuples():
        lines.append(
            f"{row.table_name:<18}{row.rows_read:>10,}{row.rows_accepted:>10,}{row.rows_rejected:>10,}"
            f"{row.rows_duplicate:>10,}{row.rows_later_dated:>8,}{row.rows_erased:>8,}  "
            f"{'yes' if row.is_reconciled else 'NO'}"
        )
    lines += ["", "Quarantine by reason (tables quarantine.<table>, each row with its reason and landing text):"]
    for table_name, group in reasons.groupby("table_name"):
        listed = ", ".join(f"{r.reason_code} {r.row_count}" for r in group.itertuples())
        lines.append(f"  {table_name:<18}{listed}")
    lines += [
        "",
        "Where to look:",
        f"  warehouse      {warehouse_path()}  (schemas raw, staging, quarantine, audit)",
        f"  landing files  {data_dir() / 'landing'}",
        "  reconciliation audit.landing_reconciliation",
    ]
    return "\n".join(lines)


def print_summary(ds: str) -> None:
    print(summary_text(ds))
