"""Drift monitoring: Evidently finds planted drift and no drift where there is none; the nightly
run writes the reports and tables; dataset drift under block_exports stops publishing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from ml.mlops.monitoring import ExportsBlockedError, drift_columns
from ml.mlops.registry import version_for
from ml.mlops.settings import DriftCheckConfig
from ml.orchestration.stages import run_stage
from ml.paths import REPO_ROOT
from tests.helpers import END_DATE, export_digests, query

DS = END_DATE.isoformat()


def frames(shift: float, mix: float, size: int = 3000, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({"spend": rng.gamma(2, 30, size), "country": rng.choice(["DE", "FR"], size)})
    current = pd.DataFrame(
        {
            "spend": rng.gamma(2, 30, size) * (1 + shift),
            "country": rng.choice(["DE", "FR"], size, p=[0.5 + mix, 0.5 - mix]),
        }
    )
    return reference, current


@pytest.mark.parametrize(
    "check",
    [
        DriftCheckConfig(method="psi", threshold=0.2),
        DriftCheckConfig(
            method="wasserstein", threshold=0.1, categorical_method="jensenshannon", categorical_threshold=0.1
        ),
        # p-values: drift when below the threshold
        DriftCheckConfig(method="ks", threshold=0.05, categorical_method="chisquare", categorical_threshold=0.05),
    ],
)
def test_evidently_finds_planted_drift_and_none_in_the_same_distribution(check):
    reference, drifted = frames(shift=1.0, mix=0.35)
    found, _ = drift_columns(reference, drifted, ["spend"], ["country"], check)
    assert found["drifted"].all(), found
    assert list(found["method"]) == [check.method, check.categorical_method]
    _, same = frames(shift=0.0, mix=0.0, seed=4)
    found, _ = drift_columns(reference, same, ["spend"], ["country"], check)
    assert not found["drifted"].any(), found


def test_empty_columns_are_left_out_and_a_vanished_one_is_drift():
    reference, current = frames(shift=0.0, mix=0.0)
    reference["never"], current["never"] = np.nan, np.nan
    reference["gone"], current["gone"] = 1.0, np.nan
    found, _ = drift_columns(reference, current, ["spend", "never", "gone"], ["country"], DriftCheckConfig())
    found = found.set_index("column_name")
    assert "never" not in found.index
    assert found.loc["gone", "drifted"] and found.loc["gone", "method"] == "presence"
    assert not found.loc[["spend", "country"], "drifted"].any()


def test_the_reference_is_never_tonight():
    from ml.mlops.monitoring import reference_end

    assert reference_end(END_DATE, END_DATE) == END_DATE - dt.timedelta(days=1)  # retrained tonight
    assert reference_end(END_DATE - dt.timedelta(days=9), END_DATE) == END_DATE - dt.timedelta(days=9)
    assert reference_end(END_DATE + dt.timedelta(days=2), END_DATE) == END_DATE - dt.timedelta(days=1)  # a backfill


def test_the_nightly_run_writes_reports_tables_and_model_health(built_warehouse):
    """A first night: the features are compared with the days before it; there were no scores or
    recommendations before it, so those two checks wait for a second night."""
    summary = query(built_warehouse, "select * from monitoring.drift_summary where ds = ?", [END_DATE])
    assert sorted(zip(summary["model_name"], summary["check_name"], strict=True)) == [("propensity", "features")]
    assert (pd.to_datetime(summary["reference_ds"]).dt.date < END_DATE).all()
    columns = query(built_warehouse, "select * from monitoring.drift_columns where ds = ?", [END_DATE])
    per_check = columns.groupby("check_name").size()
    assert per_check["features"] > 40
    for row in summary.itertuples():
        html = Path(row.report_path)
        assert html.suffix == ".html" and html.read_text()[:200].strip().lower().startswith("<!doctype html")
        assert json.loads(html.with_suffix(".json").read_text())["metrics"]
        assert row.columns_checked == per_check[row.check_name]
    health = query(built_warehouse, "select * from channels.model_health where ds = ?", [END_DATE])
    assert len(health) == 1 and set(health["status"]) <= {"ok", "drift"}
    assert (health["action"] == np.where(health["dataset_drift"], "warned", "none")).all()


def test_dataset_drift_under_block_exports_keeps_earlier_exports_and_says_why(built_warehouse, monkeypatch, tmp_path):
    raw = yaml.safe_load((REPO_ROOT / "config" / "personalization.yml").read_text())
    raw["monitoring"] = {"on_dataset_drift": "block_exports"}
    config = tmp_path / "personalization.yml"
    config.write_text(yaml.safe_dump(raw))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # this data directory's own store
    monkeypatch.setenv("PZ_DATA_DIR", str(built_warehouse))
    monkeypatch.setenv("PZ_REPORTS_DIR", str(built_warehouse / "reports"))
    monkeypatch.setenv("PZ_CONFIG", str(config))
    before = export_digests(built_warehouse)
    warehouse = str(built_warehouse / "warehouse.duckdb")
    # Pretend the propensity model in use was trained the day before, when its scores were an
    # eighth of today's: the predictions drift against that reference.
    client = MlflowClient(tracking_uri=f"sqlite:///{built_warehouse / 'mlflow.db'}")
    version, _ = version_for(client, "propensity", END_DATE)
    day_before = END_DATE - dt.timedelta(days=1)
    with duckdb.connect(warehouse) as connection:
        connection.execute(
            "insert into marts.customer_scores select ? as ds, customer_id, model_name, model_version, score / 8, "
            "decile from marts.customer_scores where ds = ?",
            [day_before, END_DATE],
        )
    client.set_model_version_tag("propensity", version.version, "ds", day_before.isoformat())
    try:
        assert "propensity/predictions" in run_stage("monitor_drift", DS)["drifted"]
        health = query(built_warehouse, "select * from channels.model_health where ds = ?", [END_DATE])
        assert "exports_blocked" in set(health["action"])
        with pytest.raises(ExportsBlockedError, match=r"block_exports.*propensity predictions"):
            run_stage("publish_channels", DS)
        assert export_digests(built_warehouse) == before
    finally:
        client.set_model_version_tag("propensity", version.version, "ds", DS)
        with duckdb.connect(warehouse) as connection:
            connection.execute("delete from marts.customer_scores where ds = ?", [day_before])
        monkeypatch.delenv("PZ_CONFIG")
        assert run_stage("monitor_drift", DS)["drifted"] == []
    run_stage("publish_channels", DS)
    assert export_digests(built_warehouse) == before


def test_a_planted_shift_fires_drift_and_an_unshifted_night_does_not(built_warehouse, monkeypatch):
    """Yesterday's scores as they are tonight: no drift. Tonight's scores shifted: drift. The
    recommendations the same way, with yesterday's items replaced by one item."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # this data directory's own store
    monkeypatch.setenv("PZ_DATA_DIR", str(built_warehouse))
    monkeypatch.setenv("PZ_REPORTS_DIR", str(built_warehouse / "reports"))
    warehouse = str(built_warehouse / "warehouse.duckdb")
    day_before = END_DATE - dt.timedelta(days=1)

    def yesterday(scores: str, items: str) -> None:
        with duckdb.connect(warehouse) as connection:
            connection.execute("delete from marts.customer_scores where ds = ?", [day_before])
            connection.execute("delete from marts.customer_recommendations where ds = ?", [day_before])
            connection.execute(
                f"insert into marts.customer_scores select ? as ds, customer_id, model_name, model_version, {scores}, "
                "decile from marts.customer_scores where ds = ?",
                [day_before, END_DATE],
            )
            connection.execute(
                f"insert into marts.customer_recommendations select ? as ds, customer_id, rank, {items}, score, "
                "strategy, model_version from marts.customer_recommendations where ds = ?",
                [day_before, END_DATE],
            )

    try:
        yesterday("score", "item_id")
        assert run_stage("monitor_drift", DS)["drifted"] == []
        summary = query(built_warehouse, "select * from monitoring.drift_summary where ds = ?", [END_DATE])
        assert set(summary["check_name"]) == {"features", "predictions", "recommendations"}
        assert (pd.to_datetime(summary["reference_ds"]).dt.date == day_before).all()
        yesterday("score / 8", "(select min(item_id) from staging.stg_items)")
        drifted = run_stage("monitor_drift", DS)["drifted"]
        assert "propensity/predictions" in drifted and "recommender/recommendations" in drifted
    finally:
        with duckdb.connect(warehouse) as connection:
            connection.execute("delete from marts.customer_scores where ds = ?", [day_before])
            connection.execute("delete from marts.customer_recommendations where ds = ?", [day_before])
        run_stage("monitor_drift", DS)
