"""Uplift on the small data set's night: past campaigns land through the contract, every send's
outcome is its goal in its own window, the models score every customer, the evidence is recorded,
and a rerun of the stage for the same ds changes nothing."""

from __future__ import annotations

import json
import shutil

import pandas as pd

from ml.orchestration.config import load_config
from tests.helpers import END_DATE, query, run_python

ACTIVATION = load_config().activation

TRAIN_AGAIN = """
import datetime as dt, json
from ml.orchestration.stages import run_stage
print(json.dumps(run_stage("train_uplift", "{ds}"), default=str))
"""


def test_campaign_sends_land_and_bad_ones_are_quarantined_with_their_reason(built_warehouse):
    ledger = pd.read_csv(built_warehouse / "synthetic_truth" / "bad_rows_ledger.csv")
    injected = ledger[ledger["table_name"] == "campaign_sends"]
    assert len(injected) and set(injected["expected_reason"].dropna()) >= {
        "missing_required",
        "unparseable_timestamp",
        "invalid_value",
        "out_of_range",
        "unknown_customer",
    }
    quarantined = query(
        built_warehouse,
        "select reason_code, count(*) as n from quarantine.campaign_sends where ds = ? group by 1",
        [END_DATE],
    ).set_index("reason_code")["n"]
    for reason, expected in injected.groupby("expected_reason").size().items():
        assert quarantined.get(reason, 0) >= expected, (reason, quarantined.to_dict())
    reconciled = query(
        built_warehouse,
        "select * from audit.landing_reconciliation where ds = ? and table_name = 'campaign_sends'",
        [END_DATE],
    )
    assert len(reconciled) == 1 and reconciled["rows_read"].iloc[0] > 0


def test_each_sends_outcome_is_a_completed_order_in_its_own_goal_window(built_warehouse):
    sends = query(
        built_warehouse,
        "select * from intermediate.int_uplift_sends where send_source = 'campaign_sends' "
        "order by customer_id, sent_at",
    )
    assert len(sends) > 500 and sends["is_control"].any() and (~sends["is_control"]).any()
    # every window ended by the end of ds: nothing after ds is read
    assert (sends["sent_at"] + pd.Timedelta(days=14) <= pd.Timestamp(END_DATE) + pd.Timedelta(days=1)).all()
    orders = query(built_warehouse, "select customer_id, ordered_at from staging.stg_orders where status = 'completed'")
    sample = sends.sample(300, random_state=1)
    joined = sample.merge(orders, on="customer_id", how="left")
    in_window = (joined["ordered_at"] >= joined["sent_at"]) & (
        joined["ordered_at"] < joined["sent_at"] + pd.Timedelta(days=14)
    )
    expected = joined.assign(hit=in_window).groupby(["customer_id", "sent_at"])["hit"].any()
    got = sample.set_index(["customer_id", "sent_at"])["converted"]
    assert (expected.reindex(got.index) == got).all()


def test_every_customer_is_scored_for_every_learned_arm(built_warehouse):
    arms = query(built_warehouse, "select * from marts.uplift_arms where ds = ?", [END_DATE])
    assert len(arms), "the small data set's campaign has enough sends to learn its arms"
    scores = query(built_warehouse, "select * from marts.customer_uplift where ds = ?", [END_DATE])
    customers = query(built_warehouse, "select customer_id from marts.customer_360 where ds = ?", [END_DATE])
    assert len(scores) == len(customers) * len(arms)
    assert set(scores["customer_id"]) == set(customers["customer_id"])
    assert (scores["uplift_se"] >= 0).all() and scores["uplift"].between(-1, 1).all()
    serving = set(map(tuple, arms.loc[arms["serves"], ["campaign_id", "arm"]].to_numpy()))
    assert set(map(tuple, scores.loc[scores["serves"], ["campaign_id", "arm"]].drop_duplicates().to_numpy())) == serving
    # an arm that serves passed its gate: Qini interval above zero, ahead of propensity ranking
    passed = arms[arms["passes_gate"]]
    assert (passed["qini_lower"] > 0).all() and (passed["qini"] > passed["propensity_qini"]).all()
    assert not (arms["serves"] & ~arms["passes_gate"]).any()


def test_the_policy_evaluation_has_every_estimator_for_the_rules_and_the_uplift_policy(built_warehouse):
    policy = query(built_warehouse, "select * from marts.uplift_policy_value where ds = ?", [END_DATE])
    for campaign, rows in policy.groupby("campaign_id"):
        pairs = set(zip(rows["policy"], rows["estimator"], strict=True))
        for name in ("rules", "uplift", "uplift_minus_rules"):
            assert {(name, "ipw"), (name, "snipw"), (name, "dr")} <= pairs, campaign
        dr = rows[rows["estimator"] == "dr"].set_index("policy")
        assert (dr["lower"] <= dr["value"]).all() and (dr["value"] <= dr["upper"]).all()
        ships = bool(rows["ships"].iloc[0])
        assert ships == bool(dr.loc["uplift", "lower"] > dr.loc["rules", "value"])


def test_a_rerun_of_train_uplift_for_the_same_ds_reuses_its_version_and_writes_the_same_tables(
    built_warehouse, tmp_path
):
    copy = tmp_path / "rerun"
    shutil.copytree(built_warehouse, copy)
    tables = ("marts.uplift_arms", "marts.uplift_policy_value", "marts.customer_uplift")

    def read() -> dict[str, pd.DataFrame]:
        return {table: query(copy, f"select * from {table} where ds = ? order by all", [END_DATE]) for table in tables}

    before = read()
    result = run_python(copy, TRAIN_AGAIN.format(ds=END_DATE.isoformat()))
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"status": "reused"' in result.stdout
    after = read()
    for table in tables:
        pd.testing.assert_frame_equal(before[table], after[table], check_exact=False, rtol=1e-9)


def test_the_decisions_record_how_each_was_decided(built_warehouse):
    assignments = query(built_warehouse, "select * from experiments.assignments where ds = ?", [END_DATE])
    assert set(assignments["decided_by"]) <= {"rules", "uplift", "exploration"}
    by_model = assignments[assignments["decided_by"] == "uplift"]
    assert by_model["policy_arm"].notna().all() and (by_model["expected_value"] > 0).all()
    randomized = assignments[assignments["decided_by"] != "uplift"]
    assert randomized["expected_value"].isna().all()
    # A thompson audience's customers record the arm they drew (held-out ones too: the readout's
    # strata); the other audiences' randomized customers have none.
    thompson = {name for name, audience in ACTIVATION.audiences.items() if audience.allocation == "thompson"}
    adaptive = randomized["audience"].isin(thompson)
    assert thompson and randomized.loc[adaptive, "policy_arm"].notna().all()
    assert randomized.loc[~adaptive, "policy_arm"].isna().all()


SERVE_UPLIFT = """
import datetime as dt, json, sys
import numpy as np, pandas as pd
from ml.orchestration.stages import run_stage
from ml.warehouse.declared import ddl
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import replace_partition

ds = dt.date.fromisoformat(sys.argv[1])
with open_warehouse() as connection:
    customers = connection.execute("select customer_id from marts.customer_360 where ds = ?", [ds]).df()
rng = np.random.default_rng(5)
rows = []
for arm in ("ten_percent", "fifteen_percent", "free_shipping"):
    rows.append(customers.assign(campaign_id="win_back_at_risk", arm=arm, uplift=0.01, uplift_se=0.01,
        incremental_revenue=1.0, expected_profit=rng.normal(0.2, 1.0, len(customers)), serves=True,
        model_version="test", ds=ds))
replace_partition("marts.customer_uplift", ddl("marts.customer_uplift"), ds, pd.concat(rows), "customer_id")
summaries = {name: run_stage(name, sys.argv[1]) for name in
             ("decide_audiences", "publish_channels", "check_outputs", "publish_serving_snapshot")}
print(json.dumps(summaries["decide_audiences"], default=str))
"""


def test_a_night_an_uplift_policy_serves_decides_exports_and_passes_its_output_tests(built_warehouse, tmp_path):
    """The serving path end to end on a copy of the night: the policy's scores (planted here: the small
    data set's arms do not pass their gate) decide win-back, the exports, the outputs' dbt tests and
    the online snapshot follow."""
    copy = tmp_path / "serving"
    shutil.copytree(built_warehouse, copy)
    result = run_python(copy, SERVE_UPLIFT, END_DATE.isoformat(), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assignments = query(
        copy, "select * from experiments.assignments where ds = ? and audience = 'win_back_at_risk'", [END_DATE]
    )
    scores = query(
        copy,
        "select customer_id, arm, expected_profit from marts.customer_uplift where ds = ? "
        "and campaign_id = 'win_back_at_risk'",
        [END_DATE],
    )
    best = scores.sort_values("expected_profit").groupby("customer_id").last()
    by_model = assignments[assignments["decided_by"] == "uplift"].set_index("customer_id")
    assert len(by_model) > 0
    assert (by_model["policy_arm"] == best.loc[by_model.index, "arm"]).all()
    assert (best.loc[by_model.index, "expected_profit"] > 0).all()
    # the unprofitable customers got no win-back message, unless in the exploration share
    exported = query(
        copy, "select customer_id from channels.email where ds = ? and audience = 'win_back_at_risk'", [END_DATE]
    )
    unprofitable = set(best.index[best["expected_profit"] <= 0])
    explored = set(assignments.loc[assignments["decided_by"] == "exploration", "customer_id"])
    assert not (set(exported["customer_id"]) & unprofitable) - explored
    versions = query(copy, "select * from experiments.versions where audience = 'win_back_at_risk'")
    assert versions["definition"].str.contains('"decided_by": "uplift"').sum() == 1


DESCRIPTIONS = """
import json, mlflow
from mlflow import MlflowClient
from ml.mlops.tracking import use_experiment
use_experiment("uplift")
client = MlflowClient()
print(json.dumps({name: client.get_model_version(name, "1").description for name in ("uplift", "propensity")}))
"""


def test_every_registered_version_says_what_it_is_and_why_it_serves_or_not(built_warehouse, tmp_path):
    copy = tmp_path / "descriptions"
    shutil.copytree(built_warehouse, copy)
    result = run_python(copy, DESCRIPTIONS)
    assert result.returncode == 0, result.stderr[-3000:]
    described = json.loads(result.stdout.strip().splitlines()[-1])
    assert described["uplift"].startswith("Uplift (DR-learner) of newsletter/")
    assert "Qini" in described["uplift"] and END_DATE.isoformat() in described["uplift"]
    assert described["propensity"].startswith("propensity trained on the data up to ")
    assert "baseline" in described["propensity"] and ("serves" in described["propensity"])
