"""The popularity baseline on a generated warehouse's evaluation split."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from ml.orchestration.config import load_config
from ml.recommender.baseline import item_popularity, top_k_excluding
from ml.recommender.interactions import decayed_weights, load_interactions, temporal_split
from ml.recommender.metrics import ndcg_at_k
from tests.helpers import END_DATE


@pytest.mark.slow
@pytest.mark.xdist_group("warehouse")
def test_popularity_baseline_finds_something_on_the_generated_split(built_warehouse):
    config = load_config().recommender
    with duckdb.connect(str(built_warehouse / "warehouse.duckdb"), read_only=True) as connection:
        interactions = load_interactions(connection, END_DATE)
    split = temporal_split(interactions, END_DATE, config.holdout_days)
    weights = decayed_weights(split.train, split.cutoff, config)
    customers = pd.Index(sorted(set(weights["customer_id"]) | set(split.holdout_purchases["customer_id"])))
    items = pd.Index(sorted(set(interactions["item_id"])))

    def matrix(frame: pd.DataFrame, values) -> sp.csr_matrix:
        return sp.csr_matrix(
            (values, (customers.get_indexer(frame["customer_id"]), items.get_indexer(frame["item_id"]))),
            shape=(len(customers), len(items)),
        )

    train = matrix(weights, weights["weight"].to_numpy())
    truth = matrix(split.holdout_purchases, np.ones(len(split.holdout_purchases)))
    bought = split.train[split.train["kind"] == "purchase"]
    recommended = top_k_excluding(item_popularity(train), matrix(bought, np.ones(len(bought))), k=config.k)
    ndcg = ndcg_at_k(truth, recommended, config.k)
    # Popularity must beat a random ranking of the catalog by a wide margin on long-tail data.
    random_ranking = np.argsort(np.random.default_rng(0).random((len(customers), len(items))), axis=1)[:, : config.k]
    assert ndcg > 2 * ndcg_at_k(truth, random_ranking, config.k)
    assert split.cutoff == dt.datetime(2026, 10, 18)
