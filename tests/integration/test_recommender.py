"""The recommender end to end on the small data set: what lands in MLflow and in the warehouse."""

from __future__ import annotations

import datetime as dt
import json

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from ml.orchestration.config import load_config
from tests.helpers import END_DATE, query, run_python

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("warehouse")]

K = load_config().recommender.k


@pytest.fixture(scope="module")
def client(built_warehouse) -> MlflowClient:
    mlflow.set_tracking_uri(f"sqlite:///{built_warehouse / 'mlflow.db'}")
    return MlflowClient()


def parent_run(client):
    experiment = client.get_experiment_by_name("recommender")
    runs = client.search_runs([experiment.experiment_id], f"tags.ds = '{END_DATE}'")
    assert len(runs) == 1
    return runs[0], client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{runs[0].info.run_id}'")


def test_the_run_logs_model_beside_baseline_with_lineage_and_nested_fits(client):
    run, children = parent_run(client)
    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
    for name in ("ndcg_at_10", "precision_at_10", "recall_at_10", "map_at_10", "catalog_coverage_at_10"):
        assert 0 <= metrics[name] <= 1 and 0 <= metrics[f"baseline_{name}"] <= 1
    assert metrics["cold_start_customers"] + metrics["warm_customers"] == metrics["customers"]
    # The hybrid model clearly beats popularity on the same split (demo data figure: see bench/results.md).
    assert metrics["ndcg_at_10"] >= 1.3 * metrics["baseline_ndcg_at_10"], metrics
    assert params["ds"] == str(END_DATE) and int(params["rows_interactions_purchase"]) > 0
    # Under search_max_customers the search sees every customer (training.search_sample).
    assert int(params["search_customers"]) == int(params["rows_customers"]), params
    assert len(tags["training_data_sha256"]) == 64 and tags["git_commit"]
    roles = sorted(child.data.params["role"] for child in children)
    assert roles == ["evaluation", "scoring", "search", "search", "search", "search"]
    families = set()
    for child in children:
        if child.data.params["role"] == "search":
            families.add(child.data.params["family"])
            history = client.get_metric_history(child.info.run_id, "validation_ndcg_at_10")
            assert int(child.data.metrics["best_epochs"]) in {m.step for m in history}
            # LightFM is early-stopped (several points); EASE is closed form (one point).
            assert len(history) >= 2 if child.data.params["family"] == "lightfm" else len(history) == 1
            assert "served_validation_ndcg_at_10" in child.data.metrics
    assert families == {"lightfm", "ease"}
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/precision_at_k.png", "evaluation/metrics_by_segment.csv"} <= artifacts
    segments = pd.read_csv(
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="evaluation/metrics_by_segment.csv")
    )
    assert set(segments["segment"]) == {"all", "cold_start", "warm"}
    assert set(segments["approach"]) == {"model", "baseline", "served"}


def test_the_first_version_is_champion_with_the_gate_decision_written(client):
    champion = client.get_model_version_by_alias("recommender", "champion")
    run, _ = parent_run(client)
    assert champion.run_id == run.info.run_id and champion.tags["ds"] == str(END_DATE)
    assert champion.tags["gate_promoted"] == "True" and champion.tags["gate_reason"].startswith("no champion yet")
    # The gate compares what customers are served with the popularity baseline, both on the holdout.
    assert run.data.tags["gate_challenger_value"] == str(run.data.metrics["served_ndcg_at_10"])
    assert run.data.tags["gate_baseline_value"] == str(run.data.metrics["baseline_ndcg_at_10"])
    assert champion.tags["gate_serves"] == "model" and champion.tags["gate_serving_version"] == str(champion.version)


def test_every_customer_gets_exactly_k_unbought_active_items(built_warehouse):
    recommendations = query(built_warehouse, "select * from marts.customer_recommendations where ds = ?", [END_DATE])
    customers = query(built_warehouse, "select customer_id from marts.customer_360 where ds = ?", [END_DATE])
    assert set(recommendations["customer_id"]) == set(customers["customer_id"])
    per_customer = recommendations.groupby("customer_id")["rank"].agg(["count", "min", "max", "nunique"])
    assert (per_customer["count"] == K).all() and (per_customer["nunique"] == K).all()
    assert (per_customer["min"] == 1).all() and (per_customer["max"] == K).all()
    assert not recommendations.duplicated(["customer_id", "item_id"]).any()
    assert set(recommendations["strategy"]) <= {"model", "popular_in_segment", "popular_overall"}
    assert (recommendations["strategy"] == "model").mean() > 0.5
    model_rows = recommendations[recommendations["strategy"] == "model"]
    assert model_rows["model_version"].notna().all()
    # Ranks follow the score within a strategy.
    ordered = model_rows.sort_values(["customer_id", "rank"])
    assert (ordered.groupby("customer_id")["score"].diff().dropna() <= 1e-6).all()
    offending = query(
        built_warehouse,
        """
        select r.customer_id, r.item_id from marts.customer_recommendations as r
        left join staging.stg_items as i on r.item_id = i.item_id
        where r.ds = $ds and (i.is_active = false or exists (
            select 1 from staging.stg_order_items as oi join staging.stg_orders as o on oi.order_id = o.order_id
            where o.customer_id = r.customer_id and oi.item_id = r.item_id and o.status = 'completed'))
        """,
        {"ds": END_DATE},
    )
    assert offending.empty, offending.head()


def test_the_champion_loads_in_a_fresh_process_and_serves_known_and_new_customers(built_warehouse):
    known = query(
        built_warehouse,
        "select customer_id from marts.customer_recommendations where strategy = 'model' order by customer_id limit 1",
    )["customer_id"][0]
    probe = f"""
import json, mlflow, pandas as pd
from ml.paths import mlflow_tracking_uri
mlflow.set_tracking_uri(mlflow_tracking_uri())
model = mlflow.pyfunc.load_model("models:/recommender@champion")
frame = pd.DataFrame({{"customer_id": [{known!r}, "NEW-1"], "country": ["DE", "FR"], "age_band": ["25-34", None],
                      "gender": ["female", "male"], "device_type": ["mobile", "desktop"],
                      "acquisition_channel": ["organic", "referral"]}})
out = model.predict(frame)
print(json.dumps(out.groupby("customer_id").size().to_dict()))
"""
    result = run_python(built_warehouse, probe, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {known: K, "NEW-1": K}


def test_the_search_runs_weekly_and_the_nights_between_refit_its_choice(client, built_warehouse, monkeypatch):
    from ml.recommender.training import plan_search

    monkeypatch.setenv("PZ_DATA_DIR", str(built_warehouse))
    config = load_config().recommender
    run, _ = parent_run(client)
    (version,) = client.search_model_versions("name = 'recommender'")
    assert run.data.params["search_ds"] == str(END_DATE) and run.data.tags["search_plan"].startswith("search: ")
    assert plan_search(END_DATE, config).reuse is None  # a rerun decides as the first run: nothing before it
    next_night = plan_search(END_DATE + dt.timedelta(days=1), config)
    if version.tags["gate_promoted"] != "True":
        assert next_night.reuse is None and "did not win the gate" in next_night.reason
        return
    chosen = {key.removeprefix("model_"): value for key, value in run.data.params.items() if key.startswith("model_")}
    assert next_night.reuse is not None and next_night.searched_on == END_DATE, next_night.reason
    assert {k: str(v) for k, v in next_night.reuse.settings.model_dump().items()} == chosen
    assert next_night.reuse.epochs == int(run.data.params["epochs"])
    week_later = plan_search(END_DATE + dt.timedelta(days=config.search_every_days), config)
    assert week_later.reuse is None and "chosen 7 days ago" in week_later.reason
    changed = config.model_copy(update={"search": [{}]})
    assert "search settings changed" in plan_search(END_DATE + dt.timedelta(days=1), changed).reason
