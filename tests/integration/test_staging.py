"""dbt staging on generated data: every injected bad row is caught, nothing is lost."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from ml.warehouse.contract import CONTRACT
from tests.helpers import END_DATE, query, run_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("warehouse")]


def classified(data_dir) -> pd.DataFrame:
    frames = [
        query(
            data_dir,
            f"select '{name}' as table_name, _source_file as source_file, _source_row as source_row, "
            f"row_status, reason_code, reason from staging.stg_{name}__classified",
        )
        for name in CONTRACT
    ]
    return pd.concat(frames, ignore_index=True)


def test_every_injected_bad_row_gets_its_expected_status_and_reason(built_warehouse):
    ledger = pd.read_csv(built_warehouse / "synthetic_truth" / "bad_rows_ledger.csv")
    found = ledger.merge(
        classified(built_warehouse), on=["table_name", "source_file", "source_row"], how="left", validate="one_to_one"
    )
    assert found["row_status"].notna().all(), "an injected row is missing from staging"
    wrong_status = found[found["row_status"] != found["expected_status"]]
    assert wrong_status.empty, wrong_status.head().to_string()
    with_reason = found[found["expected_reason"].notna()]
    wrong_reason = with_reason[with_reason["reason_code"] != with_reason["expected_reason"]]
    assert wrong_reason.empty, wrong_reason.head().to_string()


def test_quarantine_holds_each_rejected_row_with_a_readable_reason(built_warehouse):
    quarantine = query(built_warehouse, "select * from quarantine.orders where ds = ?", [END_DATE])
    assert set(quarantine["reason_code"]) >= {
        "missing_required",
        "unparseable_timestamp",
        "unknown_customer",
        "invalid_encoding",
        "malformed_row",
        "duplicate_key",
    }
    yesterday = quarantine[quarantine["reason_code"] == "unparseable_timestamp"].iloc[0]
    assert yesterday["reason"] == "unparseable_timestamp: ordered_at = 'yesterday' is not a valid timestamp"
    assert yesterday["raw_ordered_at"] == "yesterday"  # the landing text, to fix at the source


def test_counts_reconcile_for_every_table(built_warehouse):
    reconciliation = query(built_warehouse, "select * from audit.landing_reconciliation where ds = ?", [END_DATE])
    assert sorted(reconciliation["table_name"]) == sorted(CONTRACT)
    assert reconciliation["is_reconciled"].all()
    raw_counts = {name: query(built_warehouse, f"select count(*) as n from raw.{name}")["n"][0] for name in CONTRACT}
    assert dict(zip(reconciliation["table_name"], reconciliation["rows_read"], strict=True)) == raw_counts


def test_duplicates_keep_the_latest_record(built_warehouse):
    ledger = pd.read_csv(built_warehouse / "synthetic_truth" / "bad_rows_ledger.csv")
    duplicate = ledger[(ledger["table_name"] == "orders") & (ledger["bad_class"] == "duplicate_key")].iloc[0]
    kept = query(
        built_warehouse, "select _source_file from staging.stg_orders where order_id = ?", [duplicate["row_key"]]
    )
    assert kept["_source_file"].tolist() == ["orders_2026-resend-001.csv"]


def test_erased_customers_are_absent_from_every_staging_table(built_warehouse):
    erased = set(query(built_warehouse, "select customer_id from staging.stg_erasure_requests")["customer_id"])
    assert erased
    for name in ("customers", "orders", "events", "survey_responses", "consents"):
        present = set(query(built_warehouse, f"select distinct customer_id from staging.stg_{name}")["customer_id"])
        assert not present & erased, name


def test_an_earlier_ds_sees_nothing_after_its_end(built_warehouse, tmp_path):
    data_dir = tmp_path / "earlier"
    shutil.copytree(built_warehouse / "landing", data_dir / "landing")
    ds = "2026-09-30"
    result = run_pipeline(data_dir, ds, models=False)
    assert result.returncode == 0, result.stderr[-2000:]
    latest = query(data_dir, "select max(ordered_at) as latest from staging.stg_orders")["latest"][0]
    assert latest < pd.Timestamp("2026-10-01")
    later = query(data_dir, "select rows_later_dated from audit.landing_reconciliation where table_name = 'orders'")[
        "rows_later_dated"
    ][0]
    assert later > 100
    customers_then = query(data_dir, "select count(*) as n from staging.stg_customers")["n"][0]
    customers_now = query(built_warehouse, "select count(*) as n from staging.stg_customers")["n"][0]
    assert customers_then < customers_now


def test_missing_optional_tables_give_empty_staging(built_warehouse, tmp_path):
    data_dir = tmp_path / "sparse"
    shutil.copytree(built_warehouse / "landing", data_dir / "landing")
    for optional in ("events", "survey_responses", "consents", "erasure_requests", "order_items", "items"):
        shutil.rmtree(data_dir / "landing" / optional)
    result = run_pipeline(data_dir, END_DATE.isoformat(), models=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert query(data_dir, "select count(*) as n from staging.stg_events")["n"][0] == 0
    assert query(data_dir, "select count(*) as n from staging.stg_orders")["n"][0] > 0
    assert query(data_dir, "select bool_and(is_reconciled) as ok from audit.landing_reconciliation")["ok"][0]


def test_a_broken_file_fails_the_run_naming_the_file(built_warehouse, tmp_path):
    data_dir = tmp_path / "broken"
    shutil.copytree(built_warehouse / "landing", data_dir / "landing")
    broken = data_dir / "landing" / "orders" / "zz_late.csv"
    broken.write_text('order_id,customer_id,ordered_at\nO1,C1,"2026-01-01\n')
    result = run_pipeline(data_dir, END_DATE.isoformat(), models=False)
    assert result.returncode == 2
    assert str(broken) in result.stderr


def test_rerunning_a_ds_gives_identical_tables(built_warehouse):
    tables = [
        "staging.stg_orders",
        "quarantine.events",
        "audit.landing_reconciliation",
        "staging.stg_consents",
        "marts.customer_features_daily",  # float aggregates: bit-identical, not merely close
    ]
    before = {t: query(built_warehouse, f"select * from {t} order by all") for t in tables}
    result = run_pipeline(built_warehouse, END_DATE.isoformat(), models=False)
    assert result.returncode == 0
    for table in tables:
        pd.testing.assert_frame_equal(before[table], query(built_warehouse, f"select * from {table} order by all"))
