"""Interactions read from a built warehouse stop at the end of ds."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from ml.dates import end_of
from ml.orchestration.config import load_config
from ml.recommender.interactions import decayed_weights, load_interactions
from tests.helpers import END_DATE


@pytest.mark.slow
@pytest.mark.xdist_group("warehouse")
def test_loaded_interactions_stop_at_the_end_of_ds(built_warehouse):
    with duckdb.connect(str(built_warehouse / "warehouse.duckdb"), read_only=True) as connection:
        earlier = dt.date(2026, 10, 15)
        interactions = load_interactions(connection, earlier)
        purchases = connection.execute(
            "select sum(1) from staging.stg_order_items join staging.stg_orders using (order_id) "
            "where status = 'completed' and ordered_at < ?",
            [end_of(earlier)],
        ).fetchone()[0]
        later = load_interactions(connection, END_DATE)
    assert interactions["occurred_at"].max() < pd.Timestamp(end_of(earlier))
    assert (interactions["kind"] == "purchase").sum() == purchases
    assert set(interactions["kind"]) == {"purchase", "add_to_cart", "product_view"}
    weights = decayed_weights(interactions, end_of(earlier), load_config().recommender)
    assert weights.groupby(["customer_id", "item_id"]).size().max() == 1
    assert len(later) > len(interactions)  # the later ds sees the days in between
