"""Interaction weights, decay and the temporal split; on hand-built rows and on the warehouse."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ml.errors import ConfigError
from ml.orchestration.config import load_config
from ml.recommender.interactions import decayed_weights, temporal_split
from ml.recommender.settings import RecommenderConfig

CONFIG = RecommenderConfig(
    half_life_days=10, interaction_weights={"purchase": 3.0, "add_to_cart": 1.0, "product_view": 0.25}
)
AS_OF = dt.datetime(2026, 11, 1)


def rows(*records) -> pd.DataFrame:
    return pd.DataFrame(records, columns=["customer_id", "item_id", "occurred_at", "kind", "quantity"]).astype(
        {"occurred_at": "datetime64[us]"}
    )


def test_weights_decay_by_half_life_and_purchases_count_per_unit():
    frame = rows(
        ("C1", "I1", dt.datetime(2026, 10, 22), "purchase", 2.0),  # 10 days old: 3 x 2 x 0.5
        ("C1", "I1", dt.datetime(2026, 11, 1) - dt.timedelta(seconds=1), "product_view", 1.0),  # ~0.25
        ("C1", "I2", dt.datetime(2026, 10, 12), "add_to_cart", 1.0),  # 20 days old: 1 x 0.25
    )
    weights = decayed_weights(frame, AS_OF, CONFIG).set_index("item_id")["weight"]
    assert weights["I1"] == pytest.approx(3.0 + 0.25, rel=1e-4)
    assert weights["I2"] == pytest.approx(0.25)


def test_a_zero_weight_kind_is_dropped_and_future_rows_are_refused():
    config = RecommenderConfig(interaction_weights={"purchase": 1.0, "product_view": 0.0})
    frame = rows(("C1", "I1", dt.datetime(2026, 10, 30), "product_view", 1.0))
    assert decayed_weights(frame, AS_OF, config).empty
    future = rows(("C1", "I1", dt.datetime(2026, 11, 1), "purchase", 1.0))
    with pytest.raises(ValueError, match="must not see the future"):
        decayed_weights(future, AS_OF, CONFIG)


def test_the_split_trains_before_the_holdout_and_judges_purchases_within_it():
    frame = rows(
        ("C1", "I1", dt.datetime(2026, 10, 17, 23), "purchase", 1.0),  # before the 14-day holdout
        ("C1", "I2", dt.datetime(2026, 10, 18, 0), "purchase", 1.0),  # first instant of the holdout
        ("C1", "I2", dt.datetime(2026, 10, 20), "purchase", 1.0),  # same item again: one truth row
        ("C1", "I3", dt.datetime(2026, 10, 25), "product_view", 1.0),  # views are not truth
    )
    split = temporal_split(frame, dt.date(2026, 10, 31), holdout_days=14)
    assert split.cutoff == dt.datetime(2026, 10, 18)
    assert split.train["item_id"].tolist() == ["I1"]
    assert split.holdout_purchases.values.tolist() == [["C1", "I2"]]


def test_unknown_interaction_kinds_in_config_are_named(tmp_path):
    path = tmp_path / "personalization.yml"
    path.write_text("recommender:\n  interaction_weights:\n    wishlist: 2\n")
    with pytest.raises(ConfigError, match="wishlist"):
        load_config(path)
