"""Feature snapshots, the Feast store and the propensity model on the small data set."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.helpers import END_DATE, query, run_python

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("warehouse")]


def in_process(data_dir, code: str) -> dict:
    """Run code against data_dir's stores in a fresh process; it prints one JSON line."""
    result = run_python(data_dir, code, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


GRID_DATES = "select distinct feature_date from marts.customer_features_daily order by 1"


def test_snapshots_count_only_what_was_known_by_the_end_of_their_date(built_warehouse):
    mismatches = query(
        built_warehouse,
        """
        select f.feature_date, f.customer_id, f.frequency_lifetime, count(o.order_id) as expected
        from marts.customer_features_daily as f
        left join staging.stg_orders as o
            on o.customer_id = f.customer_id and o.status = 'completed' and o.ordered_at < f.feature_timestamp
        group by all
        having f.frequency_lifetime <> count(o.order_id)
        """,
    )
    assert mismatches.empty, mismatches.head()
    # The snapshots lie on the fixed grid (every Sunday), plus ds itself (a Saturday).
    dates = [d.date() for d in pd.to_datetime(query(built_warehouse, GRID_DATES)["feature_date"])]
    assert dates[-1] == END_DATE and {d.isoweekday() for d in dates[:-1]} == {7}
    assert {(b - a).days for a, b in itertools.pairwise(dates[:-1])} == {7} and (dates[-1] - dates[-2]).days == 6


def test_the_propensity_model_reads_its_features_through_its_feature_service(built_warehouse):
    """The registry holds the `propensity` FeatureService: every feature of the view, which is what the
    model's training rows and online lookups carry."""
    found = in_process(
        built_warehouse,
        """
import json
from ml.mlops.feature_store import feature_references, feature_service
service = feature_service()
print(json.dumps({"name": service.name, "tags": service.tags,
                  "features": [f"{p.name}:{f.name}" for p in service.feature_view_projections for f in p.features],
                  "view": feature_references()}))
""",
    )
    assert found["name"] == "propensity" and found["tags"]["model"] == "propensity"
    assert found["features"] == found["view"] and len(found["view"]) > 20


def test_online_lookup_returns_the_latest_snapshot_and_history_is_point_in_time(built_warehouse):
    expected = query(
        built_warehouse,
        "select customer_id, recency_days, frequency_lifetime, lifecycle_stage from marts.customer_features_daily "
        "where feature_date = ? and frequency_lifetime > 1 order by customer_id limit 3",
        [END_DATE],
    )
    ids = expected["customer_id"].tolist()
    found = in_process(
        built_warehouse,
        f"""
import json, pandas as pd
from ml.mlops.feature_store import online_features, historical_features
online = online_features({[*ids, "NOT-A-CUSTOMER"]!r})
# Mid-week: the snapshot valid then is the one of the last grid date before it.
rows = pd.DataFrame({{"customer_id": {ids[:1]!r} * 2,
                      "event_timestamp": ["{END_DATE - pd.Timedelta(days=3)}", "{END_DATE + pd.Timedelta(days=1)}"]}})
past = historical_features(rows).sort_values("event_timestamp")
print(json.dumps({{"online": online[["customer_id", "recency_days", "frequency_lifetime", "lifecycle_stage"]]
                  .to_dict("records"), "past_recency": past["recency_days"].tolist()}}, default=str))
""",
    )
    online = pd.DataFrame(found["online"])
    pd.testing.assert_frame_equal(online.iloc[:3].reset_index(drop=True), expected, check_dtype=False)
    assert online.iloc[3].drop("customer_id").isna().all()  # unknown customer: no features
    last_sunday = query(
        built_warehouse,
        "select recency_days from marts.customer_features_daily where customer_id = ? and feature_date = ?",
        [ids[0], END_DATE - pd.Timedelta(days=END_DATE.isoweekday() % 7)],
    )["recency_days"][0]
    assert found["past_recency"] == [last_sunday, expected["recency_days"][0]]


def test_training_reads_the_snapshot_of_each_cutoff_as_feasts_point_in_time_join_does(built_warehouse):
    """snapshot_features (training and scoring) reads only the asked dates' files; at the end of a
    snapshot date it must give exactly what Feast's point-in-time join gives, value for value and
    type for type, and a customer without a snapshot of the date is refused by name."""
    found = in_process(
        built_warehouse,
        f"""
import datetime as dt, json
import duckdb, pandas as pd
from ml.mlops.feature_store import MissingSnapshotError, historical_features, snapshot_features
from ml.paths import warehouse_path
with duckdb.connect(str(warehouse_path()), read_only=True) as connection:
    rows = connection.execute(
        "select customer_id, feature_date as cutoff, feature_timestamp as event_timestamp "
        "from marts.customer_features_daily using sample 600 rows (reservoir, 7)").df()
ours = snapshot_features(rows, "cutoff").drop(columns="event_timestamp")
feast = historical_features(rows).drop(columns="event_timestamp")
for frame in (ours, feast):
    frame["cutoff"] = pd.to_datetime(frame["cutoff"]).dt.date
key = ["cutoff", "customer_id"]
ours, feast = (f.sort_values(key).reset_index(drop=True) for f in (ours, feast))
try:
    unknown = pd.DataFrame({{"customer_id": ["NOT-A-CUSTOMER"], "cutoff": [dt.date.fromisoformat("{END_DATE}")]}})
    snapshot_features(unknown, "cutoff")
    refused = ""
except MissingSnapshotError as error:
    refused = str(error)
print(json.dumps({{"rows": len(ours), "dates": int(ours["cutoff"].nunique()),
                  "equal": bool(ours[feast.columns].equals(feast)), "refused": refused}}))
""",
    )
    assert found["rows"] == 600 and found["dates"] > 5
    assert found["equal"]
    assert "customer NOT-A-CUSTOMER at" in found["refused"] and "1 of 1 rows" in found["refused"]


def test_the_export_rewrites_only_the_snapshot_dates_that_changed(built_warehouse, tmp_path):
    """A second export with nothing new writes nothing; a changed date (a row of it deleted, as an
    erasure does) is rewritten alone, and the files then hold exactly the table."""
    copy = tmp_path / "data"
    shutil.copytree(built_warehouse, copy, ignore=shutil.ignore_patterns("mlruns", "mlartifacts", "airflow"))
    found = in_process(
        copy,
        """
import json
import duckdb
from ml.mlops.feature_store import export_snapshots, snapshots_glob
from ml.paths import warehouse_path
again = export_snapshots()
with duckdb.connect(str(warehouse_path())) as connection:
    first_date = "(select min(feature_date) from marts.customer_features_daily)"
    connection.execute(
        f"delete from marts.customer_features_daily where feature_date = {first_date} and customer_id = "
        f"(select min(customer_id) from marts.customer_features_daily where feature_date = {first_date})")
after_delete = export_snapshots()
with duckdb.connect(str(warehouse_path()), read_only=True) as connection:
    differ = connection.execute(
        "select count(*) from (select * exclude (feature_timestamp) from marts.customer_features_daily "
        f"except all select * exclude (feature_timestamp) from read_parquet('{snapshots_glob()}')) "
        "union all select count(*) from (select * exclude (feature_timestamp) from "
        f"read_parquet('{snapshots_glob()}') except all select * exclude (feature_timestamp) "
        "from marts.customer_features_daily)").fetchall()
print(json.dumps({"again": again, "after_delete": after_delete, "differ": [row[0] for row in differ]}))
""",
    )
    assert found["again"]["dates_written"] == 0 and found["again"]["snapshot_dates"] > 10
    deleted_from = found["after_delete"]
    # One customer's row of one date went: that date alone is written again, not the history.
    assert deleted_from["dates_written"] == 1 and deleted_from["snapshot_rows"] == found["again"]["snapshot_rows"] - 1
    assert found["differ"] == [0, 0]


# The code the sample tests run first: the night's whole training set, uncapped.
WHOLE_TRAINING_SET = f"""
import datetime as dt, json
from ml.orchestration.config import load_config
from ml.propensity.dataset import training_set
config = load_config().propensity
ds = dt.date.fromisoformat("{END_DATE}")
whole = training_set(ds, config)"""


def test_above_the_cap_training_takes_a_stable_sample_of_customers_with_all_their_cutoffs(built_warehouse):
    found = in_process(
        built_warehouse,
        WHOLE_TRAINING_SET
        + """
capped = config.model_copy(update={"training_max_customers": 300})
first, again = training_set(ds, capped), training_set(ds, capped)
sample = set(first.rows["customer_id"])
print(json.dumps({
    "available": [whole.customers_available, whole.customers, first.customers_available],
    "sampled": first.customers,
    "same_sample": sample == set(again.rows["customer_id"]),
    "rows_of_sample": [len(first.rows), int(whole.rows["customer_id"].isin(sample).sum())],
    "same_values": bool(first.rows.equals(whole.rows[whole.rows["customer_id"].isin(sample)].reset_index(drop=True))),
}))
""",
    )
    available, customers, available_capped = found["available"]
    assert available == customers == available_capped > 300
    assert found["sampled"] == 300 and found["same_sample"]
    rows, rows_in_whole = found["rows_of_sample"]
    assert rows == rows_in_whole and found["same_values"]  # every cutoff of each sampled customer, unchanged


def test_above_the_row_cap_training_takes_the_customers_whose_rows_fit_in_the_same_stable_order(built_warehouse):
    found = in_process(
        built_warehouse,
        WHOLE_TRAINING_SET
        + """
capped = training_set(ds, config.model_copy(update={"training_max_rows": 2000}))
print(json.dumps({
    "rows": len(capped.rows),
    "rows_per_customer": whole.rows.groupby("customer_id").size().to_dict(),
    "sampled": sorted(set(capped.rows["customer_id"])),
}))
""",
    )
    by_hash = sorted(found["rows_per_customer"], key=lambda c: (hashlib.md5(c.encode()).hexdigest(), c))
    sampled = found["sampled"]
    # The first customers in the hash order, as many as fit: the next one would not have.
    assert set(sampled) == set(by_hash[: len(sampled)])
    assert found["rows"] == sum(found["rows_per_customer"][c] for c in sampled) <= 2000
    assert found["rows"] + found["rows_per_customer"][by_hash[len(sampled)]] > 2000


@pytest.fixture(scope="module")
def propensity_run(built_warehouse):
    mlflow.set_tracking_uri(f"sqlite:///{built_warehouse / 'mlflow.db'}")
    client = MlflowClient()
    experiment = client.get_experiment_by_name("propensity")
    runs = client.search_runs(
        [experiment.experiment_id], f"tags.ds = '{END_DATE}' and attributes.run_name LIKE 'propensity%'"
    )
    assert len(runs) == 1
    return client, runs[0]


def test_the_model_beats_the_rfm_heuristic_and_the_base_rate_out_of_time(propensity_run):
    client, run = propensity_run
    m = run.data.metrics
    # Demo figures (AUC vs RFM + 0.03, Brier vs base rate) are in bench/results.md; safe bounds here.
    assert m["roc_auc"] >= m["baseline_roc_auc"] + 0.01, m
    assert m["brier"] < m["brier_base_rate"], m
    assert m["top_decile_lift"] > 1.5 and 0 < m["base_rate"] < 1
    assert pd.Timestamp(run.data.params["validation_cutoff"]) + pd.Timedelta(days=30) <= pd.Timestamp(END_DATE)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {
        "evaluation/calibration_roc_pr.png",
        "evaluation/permutation_importance.csv",
        "evaluation/permutation_importance.png",
        "evaluation/deciles.csv",
    } <= artifacts
    champion = client.get_model_version_by_alias("propensity", "champion")
    assert champion.run_id == run.info.run_id and champion.tags["gate_reason"].startswith("no champion yet")
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert sorted(child.data.params["role"] for child in children) == ["evaluation", "scoring"]


def test_every_customer_gets_a_probability_and_a_decile(built_warehouse):
    scores = query(built_warehouse, "select * from marts.customer_scores where ds = ?", [END_DATE])
    customers = query(built_warehouse, "select customer_id from marts.customer_360 where ds = ?", [END_DATE])
    assert sorted(scores["customer_id"]) == sorted(customers["customer_id"])
    assert scores["score"].between(0, 1).all() and (scores["model_name"] == "propensity").all()
    sizes = scores.groupby("decile").size()
    assert list(sizes.index) == list(range(1, 11)) and sizes.max() - sizes.min() <= 1
    by_decile = scores.groupby("decile")["score"].mean()
    assert by_decile.is_monotonic_decreasing


def test_the_champion_scores_online_features_in_a_fresh_process(built_warehouse):
    customer = query(
        built_warehouse,
        "select customer_id from marts.customer_scores where ds = ? order by score desc limit 1",
        [END_DATE],
    )["customer_id"][0]
    stored = query(
        built_warehouse,
        "select score from marts.customer_scores where ds = ? and customer_id = ?",
        [END_DATE, customer],
    )["score"][0]
    found = in_process(
        built_warehouse,
        f"""
import json, mlflow
from ml.paths import mlflow_tracking_uri
from ml.mlops.feature_store import online_features
mlflow.set_tracking_uri(mlflow_tracking_uri())
model = mlflow.pyfunc.load_model("models:/propensity@champion")
print(json.dumps({{"probability": float(model.predict(online_features([{customer!r}]))["probability"][0])}}))
""",
    )
    assert found["probability"] == pytest.approx(stored, abs=1e-9)


def test_a_night_with_the_same_training_rows_keeps_the_last_version_instead_of_retraining(built_warehouse):
    """The training rows change only when a cutoff's labels complete or the window drops a cutoff:
    the nights between learn nothing new, so they register nothing and the last version serves."""
    found = in_process(
        built_warehouse,
        f"""
import datetime as dt, json, mlflow
from mlflow import MlflowClient
from ml.orchestration.config import load_config
from ml.mlops.lifecycle import night_line
from ml.paths import mlflow_tracking_uri
from ml.propensity.dataset import plan_cutoffs
from ml.propensity.training import train_propensity
config = load_config().propensity
ds = dt.date.fromisoformat("{END_DATE}")
first = dt.date(2000, 1, 1)
same_plan = next(
    ds + dt.timedelta(days=days) for days in range(1, 7)
    if plan_cutoffs(ds + dt.timedelta(days=days), config, first) == plan_cutoffs(ds, config, first)
)
mlflow.set_tracking_uri(mlflow_tracking_uri())
client = MlflowClient()
versions = len(client.search_model_versions("name = 'propensity'"))
summary = train_propensity(same_plan, config)
runs = client.search_runs(
    [client.get_experiment_by_name("propensity").experiment_id], f"tags.ds = '{{same_plan}}'"
)
print(json.dumps({{
    "summary": summary,
    "versions": [versions, len(client.search_model_versions("name = 'propensity'"))],
    "runs": len(runs),
    "line": night_line("propensity", same_plan.isoformat()),
}}))
""",
    )
    summary = found["summary"]
    assert summary["status"] == "reused" and summary["version"] == "1", summary
    assert "a retrain would learn the same model" in summary["reason"]
    assert found["versions"] == [1, 1]
    assert found["runs"] == 0  # no empty run: the reuse is recorded on the version
    assert found["line"].startswith("propensity: no new version tonight, v1 stays (its training rows")
