"""Any data that follows the contract works: no events, only orders, a handful of items, no items;
for the recommender and for the propensity model (short history, single orders, no surveys)."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from ml.orchestration.config import load_config
from ml.synthetic.generate import generate
from ml.synthetic.settings import GeneratorSettings
from tests.helpers import END_DATE, query, run_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("edge")]

# 100 days: shorter than the propensity training window (fewer cutoffs), long enough for an
# out-of-time validation cutoff with its 30-day horizon and earlier cutoffs to learn from.
TINY = GeneratorSettings(customers=400, days=100, end_date=END_DATE, bad_row_rate=0.0, seed=11)
K = load_config().recommender.k
HANDFUL = 4


@pytest.fixture(scope="module")
def tiny_landing(tmp_path_factory):
    landing = tmp_path_factory.mktemp("tiny") / "landing"
    generate(TINY, landing)
    return landing


def variant(tiny_landing, tmp_path, drop: tuple[str, ...] = ()):
    data_dir = tmp_path / "data"
    shutil.copytree(tiny_landing, data_dir / "landing")
    for table in drop:
        shutil.rmtree(data_dir / "landing" / table)
    return data_dir


def build(data_dir, whole_night: bool = False):
    """The night for END_DATE: both models and their scores, or every stage with `whole_night`."""
    scoring = () if whole_night else ("--through", "score_recommendations", "--through", "score_propensity")
    result = run_pipeline(data_dir, END_DATE.isoformat(), True, *scoring)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    recommendations = query(data_dir, "select * from marts.customer_recommendations where ds = ?", [END_DATE])
    customers = query(data_dir, "select customer_id from marts.customer_360 where ds = ?", [END_DATE])
    # Propensity works on the same sparse data: every customer gets a probability.
    scores = query(data_dir, "select customer_id, score from marts.customer_scores where ds = ?", [END_DATE])
    assert sorted(scores["customer_id"]) == sorted(customers["customer_id"]) and scores["score"].between(0, 1).all()
    assert "cutoffs in the 180-day training window are usable" in result.stderr
    return result, recommendations, customers


@pytest.mark.parametrize(
    "drop",
    [("events",), ("events", "survey_responses", "consents", "erasure_requests")],
    ids=["no events", "only orders"],
)
def test_without_events_the_model_learns_from_purchases_and_everyone_gets_k(tiny_landing, tmp_path, drop):
    data_dir = variant(tiny_landing, tmp_path, drop)
    _, recommendations, customers = build(data_dir)
    assert set(recommendations["customer_id"]) == set(customers["customer_id"])
    assert (recommendations.groupby("customer_id").size() == K).all()
    # A version was trained on the purchases alone; it serves only if the gate found it better than
    # popularity on the holdout (on 400 customers without events it usually is not).
    client = MlflowClient(tracking_uri=f"sqlite:///{data_dir / 'mlflow.db'}")
    (version,) = client.search_model_versions("name = 'recommender'")
    assert int(client.get_run(version.run_id).data.params["rows_interactions_purchase"]) > 0
    assert ("model" in set(recommendations["strategy"])) == (version.tags["gate_serves"] == "model")


def test_a_catalog_smaller_than_k_gives_every_unbought_active_item(tiny_landing, tmp_path):
    data_dir = variant(tiny_landing, tmp_path)
    items_dir = data_dir / "landing" / "items"
    first = sorted(items_dir.glob("*.parquet"))[0]
    handful = pq.read_table(first).slice(0, HANDFUL)
    shutil.rmtree(items_dir)
    items_dir.mkdir()
    pq.write_table(handful, items_dir / "items_handful.parquet")
    _, recommendations, customers = build(data_dir)
    available = query(
        data_dir,
        """
        select c.customer_id, count(i.item_id) as available
        from marts.customer_360 as c cross join staging.stg_items as i
        where c.ds = $ds and coalesce(i.is_active, true) and not exists (
            select 1 from staging.stg_order_items as oi join staging.stg_orders as o on oi.order_id = o.order_id
            where o.customer_id = c.customer_id and oi.item_id = i.item_id and o.status = 'completed')
        group by all
        """,
        {"ds": END_DATE},
    ).set_index("customer_id")["available"]
    given = recommendations.groupby("customer_id").size().reindex(available.index, fill_value=0)
    assert (given == available.clip(upper=K)).all()
    assert len(customers) > 0 and available.max() <= HANDFUL


def test_no_items_at_all_skips_the_recommender_and_the_run_continues(tiny_landing, tmp_path):
    result, recommendations, customers = build(variant(tiny_landing, tmp_path, ("items",)), whole_night=True)
    assert "recommender ds=2026-10-31 skipped: the catalog (staging.stg_items) is empty" in result.stderr
    assert recommendations.empty and len(customers) > 0
