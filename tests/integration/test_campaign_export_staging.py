"""A campaign export, landed by the importer, goes through landing and staging with nothing quarantined
and every count reconciled: each export row is one staged send."""

from __future__ import annotations

import datetime as dt

import duckdb

from ml.orchestration.stages import run_stage
from ml.synthetic.campaign_export import MAPPING, planted_export
from ml.warehouse.campaign_export import CampaignExport, write_landing


def test_a_landed_export_goes_through_staging_with_nothing_quarantined(tmp_path, monkeypatch):
    monkeypatch.setenv("PZ_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PZ_REPORTS_DIR", str(tmp_path / "reports"))
    export, _ = planted_export(400, seed=5)
    export.to_csv(tmp_path / "export.csv", index=False)
    sent_on = dt.date(2026, 3, 2)
    mapping = CampaignExport.model_validate({**MAPPING, "sent_on": sent_on})
    counts = write_landing(tmp_path / "export.csv", mapping, tmp_path / "landing")
    ds = (sent_on + dt.timedelta(days=mapping.window_days)).isoformat()
    loads = run_stage("load_landing", ds, allow_stale=True)  # the newest row is mid-window: a deliberate backfill
    assert {table: loads[table] for table in counts} == counts
    run_stage("build_staging", ds)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        reconciliation = connection.execute(
            "select table_name, rows_accepted, rows_rejected + rows_duplicate + rows_later_dated as rows_quarantined,"
            " is_reconciled from audit.landing_reconciliation where ds = ?",
            [ds],
        ).df()
        sends = connection.execute(
            "select arm, is_control, count(*) from staging.stg_campaign_sends group by all order by arm"
        ).fetchall()
    by_table = reconciliation.set_index("table_name")
    assert by_table["is_reconciled"].all() and (by_table["rows_quarantined"] == 0).all(), reconciliation
    assert sum(count for *_, count in sends) == len(export) == counts["campaign_sends"]
    assert {(arm, is_control) for arm, is_control, _ in sends} == {
        ("control", True),
        ("reminder", False),
        ("sale", False),
    }
