"""The metric marts agree with independent pandas computations on generated data.

The pandas side starts from the accepted staging rows (their correctness is test_staging's
concern) and computes each metric its own way, including the confidence intervals.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.helpers import END_DATE, pipeline_env, query, run_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("warehouse")]

Z = 1.959964
DS = pd.Timestamp(END_DATE)


def wilson(successes: int, n: int) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927), written from the textbook form, in percent."""
    p = successes / n
    denominator = 1 + Z**2 / n
    centre = p + Z**2 / (2 * n)
    spread = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return 100 * (centre - spread) / denominator, 100 * (centre + spread) / denominator


def nps_with_interval(scores: pd.Series) -> tuple[float, float, float]:
    """NPS and its interval from the variance of the +1/0/-1 coding of each answer."""
    coded = np.select([scores >= 9, scores <= 6], [1.0, -1.0], 0.0)
    mean = coded.mean()
    standard_error = math.sqrt(coded.var(ddof=0) / len(coded))
    return 100 * mean, max(-100, 100 * (mean - Z * standard_error)), min(100, 100 * (mean + Z * standard_error))


@pytest.fixture(scope="module")
def responses(built_warehouse) -> pd.DataFrame:
    frame = query(built_warehouse, "select * from staging.stg_survey_responses")
    frame["response_date"] = frame["responded_at"].dt.normalize()
    return frame


def test_daily_csat_ces_nps_match_pandas(built_warehouse, responses):
    mart = query(built_warehouse, "select * from marts.cx_metrics_daily where touchpoint = 'all'")
    mart["metric_date"] = pd.to_datetime(mart["metric_date"])
    mart = mart.set_index(["metric_date", "metric"])
    checked = 0
    for (day, survey_type), group in responses.groupby(["response_date", "survey_type"]):
        row = mart.loc[(day, survey_type)]
        assert row["responses"] == len(group)
        assert bool(row["is_low_sample"]) == (len(group) < 30)
        scores = group["score"]
        if survey_type == "csat":
            satisfied = int((scores >= 4).sum())
            expected, lower, upper = 100 * satisfied / len(scores), *wilson(satisfied, len(scores))
        elif survey_type == "ces":
            expected = scores.mean()
            if len(scores) > 1:
                half = Z * scores.std(ddof=1) / math.sqrt(len(scores))
                lower, upper = expected - half, expected + half
            else:
                lower = upper = None
        else:
            expected, lower, upper = nps_with_interval(scores)
        assert row["value"] == pytest.approx(expected, abs=1e-4), (day, survey_type)
        if lower is None:
            assert pd.isna(row["ci_lower"])
        else:
            assert row["ci_lower"] == pytest.approx(lower, abs=1e-3), (day, survey_type)
            assert row["ci_upper"] == pytest.approx(upper, abs=1e-3), (day, survey_type)
        checked += 1
    assert checked == len(mart)


def test_rolling_and_monthly_nps_per_segment_match_pandas(built_warehouse, responses):
    customers = query(built_warehouse, "select customer_id, country from staging.stg_customers")
    nps = responses[responses["survey_type"] == "nps"].merge(customers, on="customer_id")
    rolling = nps[nps["response_date"] > DS - pd.Timedelta(days=30)]
    month = nps[nps["response_date"] >= DS.replace(day=1)]
    mart = query(
        built_warehouse,
        "select * from marts.cx_metrics where metric = 'nps' and touchpoint = 'all' "
        "and segment_type in ('all', 'country') and period_end = ?",
        [END_DATE],
    )
    for period_type, frame in (("rolling_30d", rolling), ("month", month)):
        for country, group in [("all", frame), *frame.groupby("country")]:
            segment_type = "all" if country == "all" else "country"
            row = mart[
                (mart["period_type"] == period_type)
                & (mart["segment_type"] == segment_type)
                & (mart["segment_value"] == country)
            ].iloc[0]
            value, lower, upper = nps_with_interval(group["score"])
            assert row["responses"] == len(group), (period_type, country)
            assert row["value"] == pytest.approx(value, abs=1e-4), (period_type, country)
            assert (row["ci_lower"], row["ci_upper"]) == pytest.approx((lower, upper), abs=1e-3)


def test_monthly_retention_cohorts_match_pandas(built_warehouse):
    orders = query(built_warehouse, "select customer_id, ordered_at from staging.stg_orders where status = 'completed'")
    orders["month"] = orders["ordered_at"].dt.to_period("M")
    cohort = orders.groupby("customer_id")["month"].min().rename("cohort")
    active = orders[["customer_id", "month"]].drop_duplicates().join(cohort, on="customer_id")
    active["k"] = (active["month"] - active["cohort"]).apply(lambda offset: offset.n)
    expected = active.groupby(["cohort", "k"]).size().rename("retained").reset_index()
    sizes = cohort.value_counts().rename("size")
    mart = query(built_warehouse, "select * from marts.retention_cohorts where ds = ?", [END_DATE])
    mart["cohort"] = pd.to_datetime(mart["cohort_month"]).dt.to_period("M")
    merged = mart.merge(expected, left_on=["cohort", "months_since_first_order"], right_on=["cohort", "k"], how="left")
    merged["retained"] = merged["retained"].fillna(0)
    assert (merged["retained_customers"] == merged["retained"]).all()
    assert (merged["cohort_customers"] == merged["cohort"].map(sizes)).all()
    assert np.allclose(merged["retention_rate"], merged["retained"] / merged["cohort"].map(sizes))
    assert len(mart) == sum(DS.to_period("M").ordinal - c.ordinal + 1 for c in sizes.index)


def test_customer_360_rfm_consent_and_lifecycle_match_pandas(built_warehouse):
    customer_360 = query(built_warehouse, "select * from marts.customer_360 where ds = ?", [END_DATE])
    customer_360 = customer_360.set_index("customer_id")
    customers = query(built_warehouse, "select customer_id from staging.stg_customers")
    assert set(customer_360.index) == set(customers["customer_id"])
    erased = set(query(built_warehouse, "select customer_id from staging.stg_erasure_requests")["customer_id"])
    assert not erased & set(customer_360.index)
    event_customers = query(built_warehouse, "select distinct customer_id from marts.fct_customer_events_daily")
    assert not erased & set(event_customers["customer_id"])

    orders = query(built_warehouse, "select * from staging.stg_orders where status = 'completed'")
    stats = orders.groupby("customer_id").agg(
        frequency=("order_id", "size"), monetary=("total_amount", "sum"), last=("ordered_at", "max")
    )
    joined = customer_360.join(stats, rsuffix="_pandas")
    buyers = joined[joined["frequency_pandas"].notna()]
    assert (buyers["frequency"] == buyers["frequency_pandas"]).all()
    assert np.allclose(buyers["monetary"].astype(float), buyers["monetary_pandas"].astype(float))
    recency = (DS - buyers["last"].dt.normalize()).dt.days
    assert (buyers["recency_days"] == recency).all()
    assert (joined.loc[joined["frequency_pandas"].isna(), "frequency"] == 0).all()

    churn_days = 90
    churned = buyers["recency_days"] >= churn_days
    assert (buyers.loc[churned, "lifecycle_stage"] == "churned").all()
    assert not (buyers.loc[~churned, "lifecycle_stage"] == "churned").any()

    consents = query(built_warehouse, "select * from staging.stg_consents where channel = 'email'")
    in_force = consents.sort_values("recorded_at").groupby("customer_id")["granted"].last()
    expected = customer_360.index.to_series().map(in_force).fillna(False).astype(bool)
    assert (customer_360["has_consent_email"] == expected).all()


def test_churn_ties_to_nps_promoters_churn_less(built_warehouse):
    churn = query(built_warehouse, "select * from marts.churn_by_nps_category").set_index("nps_category")
    assert churn.loc["detractor", "churn_rate"] > churn.loc["promoter", "churn_rate"]


def test_incremental_nights_equal_a_full_refresh(built_warehouse, tmp_path):
    """Three nightly incremental runs give the same daily facts as one full refresh of the last day
    (the session's warehouse: its first and only night built END_DATE from empty)."""
    nightly, full = tmp_path / "nightly", built_warehouse
    shutil.copytree(built_warehouse / "landing", nightly / "landing")
    days = [(END_DATE - pd.Timedelta(days=offset)).isoformat() for offset in (2, 1, 0)]
    for ds in days:
        assert run_pipeline(nightly, ds, models=False).returncode == 0, ds
    for table in ("fct_cx_responses_daily", "fct_customer_events_daily", "cx_metrics_daily", "cx_metrics"):
        sql = f"select * from marts.{table} order by all"
        pd.testing.assert_frame_equal(query(nightly, sql), query(full, sql), obj=table)
    for snapshot in ("customer_360", "retention_cohorts"):  # one snapshot per ds: compare the last day's
        sql = f"select * from marts.{snapshot} where ds = ? order by all"
        pd.testing.assert_frame_equal(query(nightly, sql, [END_DATE]), query(full, sql, [END_DATE]), obj=snapshot)
    # The nightly warehouse kept a reconciliation partition per night.
    assert len(query(nightly, "select distinct ds from audit.landing_reconciliation")) == 3


def test_docs_generate_and_public_columns_are_described(built_warehouse):
    import subprocess
    import sys

    from ml.paths import REPO_ROOT

    command = [
        sys.executable,
        "-c",
        "from ml.orchestration.config import load_config; from ml.warehouse.transform import run_dbt; "
        f"run_dbt('docs generate', __import__('datetime').date.fromisoformat('{END_DATE}'), load_config().dbt_vars())",
    ]
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=pipeline_env(built_warehouse), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-2000:]
    target = built_warehouse / "dbt" / "target"
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    for model in ("cx_metrics_daily", "retention_cohorts", "cx_metrics"):
        node_id = f"model.personalization.{model}"
        actual_columns = set(catalog["nodes"][node_id]["columns"])
        described = {name for name, column in manifest["nodes"][node_id]["columns"].items() if column["description"]}
        assert actual_columns <= described, f"{model}: undescribed {sorted(actual_columns - described)}"
