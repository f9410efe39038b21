"""Customer-item interactions for the recommender: read up to the end of ds, weighted, decayed, split.

Purchases (completed orders, per unit), cart adds and product views each count with a weight
from config, and older interactions count less: weight x 0.5 ** (age in days / half-life). The
evaluation holdout is the last `holdout_days` before the end of ds: the model trains on what came
before and is judged on what customers bought in the holdout.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from ml.constants import CUSTOMER_ID, ITEM_ID
from ml.dates import end_of
from ml.recommender.settings import INTERACTION_KINDS, RecommenderConfig
from ml.warehouse.engine import read_frame

SECONDS_PER_DAY = 86_400.0

INTERACTIONS_SQL = """
select orders.customer_id, order_items.item_id, orders.ordered_at as occurred_at,
       'purchase' as kind, cast(order_items.quantity as double) as quantity
from staging.stg_order_items as order_items
inner join staging.stg_orders as orders on order_items.order_id = orders.order_id
where orders.status = 'completed' and orders.ordered_at < $ds_end
union all
select customer_id, item_id, occurred_at, event_type as kind, 1.0 as quantity
from staging.stg_events
where event_type in ('add_to_cart', 'product_view') and item_id is not null and occurred_at < $ds_end
"""


def load_interactions(connection, ds: dt.date) -> pd.DataFrame:
    """Every purchase, cart add and product view up to the end of ds, one row each (the largest read
    of the night: through Arrow, so its ids are not copied once per row)."""
    return read_frame(connection, INTERACTIONS_SQL, {"ds_end": end_of(ds)})


def decayed_weights(interactions: pd.DataFrame, as_of: dt.datetime, config: RecommenderConfig) -> pd.DataFrame:
    """One row per customer and item: the sum of weight x quantity x 0.5 ** (age days / half-life)."""
    unknown = set(interactions["kind"]) - set(INTERACTION_KINDS)
    if unknown:
        raise ValueError(f"unknown interaction kinds {sorted(unknown)}")
    if interactions["occurred_at"].max() >= pd.Timestamp(as_of):
        raise ValueError(f"interactions at or after {as_of}: weights must not see the future")
    age_days = (pd.Timestamp(as_of) - interactions["occurred_at"]).dt.total_seconds() / SECONDS_PER_DAY
    kind_weight = interactions["kind"].map(config.interaction_weights).fillna(0.0)
    weighted = interactions.assign(
        weight=kind_weight * interactions["quantity"] * 0.5 ** (age_days / config.half_life_days)
    )
    summed = weighted.groupby([CUSTOMER_ID, ITEM_ID], as_index=False, sort=True)["weight"].sum()
    return summed[summed["weight"] > 0].reset_index(drop=True)


@dataclass(frozen=True)
class TemporalSplit:
    train: pd.DataFrame  # interactions before the cutoff
    holdout_purchases: pd.DataFrame  # customer_id, item_id bought from the cutoff to the end of ds
    cutoff: dt.datetime


def temporal_split(interactions: pd.DataFrame, ds: dt.date, holdout_days: int) -> TemporalSplit:
    """Train on everything before the holdout; the truth is what was bought within it."""
    cutoff = end_of(ds) - dt.timedelta(days=holdout_days)
    before = interactions["occurred_at"] < pd.Timestamp(cutoff)
    holdout = interactions[~before & (interactions["kind"] == "purchase")]
    truth = holdout[[CUSTOMER_ID, ITEM_ID]].drop_duplicates().reset_index(drop=True)
    return TemporalSplit(interactions[before].reset_index(drop=True), truth, cutoff)
