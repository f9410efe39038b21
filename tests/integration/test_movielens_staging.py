"""A MovieLens slice goes through landing and staging with nothing quarantined and every count reconciled."""

from __future__ import annotations

import duckdb

from ml.orchestration.stages import run_stage
from ml.warehouse.movielens import read_movielens, write_landing
from tests.unit.warehouse.test_movielens import write_csv_release


def test_a_landed_slice_goes_through_staging_with_nothing_quarantined(tmp_path, monkeypatch):
    monkeypatch.setenv("PZ_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PZ_REPORTS_DIR", str(tmp_path / "reports"))
    counts = write_landing(read_movielens(write_csv_release(tmp_path / "release")), tmp_path / "landing")
    ds = "2017-07-14"  # the day of the last rating
    loads = run_stage("load_landing", ds)
    assert {table: loads[table] for table in counts} == counts
    run_stage("build_staging", ds)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:  # as dbt-duckdb opened it here
        reconciliation = connection.execute(
            "select table_name, rows_read, rows_accepted,"
            " rows_rejected + rows_duplicate + rows_later_dated as rows_quarantined, is_reconciled"
            " from audit.landing_reconciliation where ds = ?",
            [ds],
        ).df()
        staged_orders = connection.execute("select count(*) from staging.stg_orders").fetchone()[0]
    by_table = reconciliation.set_index("table_name")
    assert by_table["is_reconciled"].all() and (by_table["rows_quarantined"] == 0).all(), reconciliation
    assert by_table.loc["orders", "rows_accepted"] == counts["orders"] == staged_orders
