"""What the recommender reads from the warehouse for a `ds`, and the world as it looked at a moment
before it (for a holdout) or at the end of it (for the model that scores)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.constants import CUSTOMER_ID, ITEM_ID
from ml.errors import PlatformError
from ml.recommender.features import item_feature_pairs, price_band_edges, user_feature_pairs
from ml.recommender.interactions import decayed_weights, load_interactions
from ml.recommender.model import TrainingData
from ml.recommender.serving import Audience, serve, weight_matrix
from ml.recommender.settings import RecommenderConfig
from ml.warehouse.engine import open_warehouse


class MissingUpstreamError(PlatformError, RuntimeError):
    """A table this stage reads has nothing for ds: an earlier stage did not run for it."""


@dataclass(frozen=True)
class RecommenderInputs:
    ds: dt.date
    interactions: pd.DataFrame  # customer_id, item_id, occurred_at, kind, quantity (up to the end of ds)
    customers: pd.DataFrame  # customer_360 at ds: every customer known then
    items: pd.DataFrame  # the catalog: item_id, category, price, tags, is_active

    @property
    def item_ids(self) -> pd.Index:
        return pd.Index(self.items[ITEM_ID])

    @property
    def eligible(self) -> np.ndarray:
        """Items that may be recommended: active, or of unknown status."""
        return self.items["is_active"].fillna(True).to_numpy(dtype=bool)

    def counts(self) -> dict[str, int]:
        kinds = self.interactions["kind"].value_counts()
        return {
            "customers": len(self.customers),
            "items": len(self.items),
            "active_items": int(self.eligible.sum()),
            **{f"interactions_{kind}": int(kinds.get(kind, 0)) for kind in ("purchase", "add_to_cart", "product_view")},
        }


def load_inputs(connection, ds: dt.date, config: RecommenderConfig) -> RecommenderInputs:
    columns = sorted({*config.user_features, config.fallback_segment})
    customers = connection.execute(
        f"select customer_id, {', '.join(columns)} from marts.customer_360 where ds = ? order by customer_id", [ds]
    ).df()
    if customers.empty:
        raise MissingUpstreamError(
            f"marts.customer_360 has no rows for ds={ds}: run build_metrics for {ds} before the recommender"
        )
    items = connection.execute(
        "select item_id, category, price, tags, is_active from staging.stg_items order by item_id"
    ).df()
    return RecommenderInputs(ds, load_interactions(connection, ds), customers, items)


def read_inputs(ds: dt.date, config: RecommenderConfig) -> RecommenderInputs:
    """load_inputs on the warehouse."""
    with open_warehouse() as connection:
        return load_inputs(connection, ds, config)


@dataclass(frozen=True)
class View:
    """Everything known before `as_of`, for every customer of customer_360."""

    data: TrainingData
    customer_ids: pd.Index
    history: sp.csr_matrix  # customers x items decayed weights
    purchased: sp.csr_matrix  # customers x items, bought before as_of
    segment: np.ndarray  # fallback segment label per customer

    def audience(self, customer_ids: pd.Index, exclude_purchased: bool, exclude_interacted: bool = False) -> Audience:
        """The customers to serve; never their purchases (`exclude_purchased`) or anything they
        bought, carted or viewed (`exclude_interacted`)."""
        rows = self.customer_ids.get_indexer(customer_ids)
        if (rows < 0).any():
            raise ValueError(f"{int((rows < 0).sum())} customers are not in customer_360")
        if exclude_interacted:
            exclude = sp.csr_matrix(self.history[rows] != 0, dtype=bool)
        elif exclude_purchased:
            exclude = self.purchased[rows]
        else:
            exclude = sp.csr_matrix(self.purchased[rows].shape, dtype=bool)
        return Audience(
            customer_ids=customer_ids,
            user_pairs=self.data.user_pairs,
            segment=self.segment[rows],
            history_items=np.diff(self.history[rows].indptr),
            exclude=exclude,
        )


def view_as_of(inputs: RecommenderInputs, as_of: dt.datetime, config: RecommenderConfig) -> View:
    before = inputs.interactions[inputs.interactions["occurred_at"] < pd.Timestamp(as_of)]
    weights = decayed_weights(before, as_of, config)
    customer_ids = pd.Index(inputs.customers[CUSTOMER_ID])
    item_ids = inputs.item_ids
    edges = price_band_edges(inputs.items["price"])
    data = TrainingData(
        weights=weights[weights[ITEM_ID].isin(item_ids) & weights[CUSTOMER_ID].isin(customer_ids)],
        user_pairs=user_feature_pairs(inputs.customers, config.user_features, weights, inputs.items),
        item_ids=item_ids,
        item_pairs=item_feature_pairs(inputs.items, edges),
        price_band_edges=edges,
        trained_through=as_of,
        purchases=before.loc[
            (before["kind"] == "purchase") & before[ITEM_ID].isin(item_ids) & before[CUSTOMER_ID].isin(customer_ids),
            [CUSTOMER_ID, ITEM_ID],
        ],
    )
    purchases = data.purchases.assign(weight=1.0)
    return View(
        data=data,
        customer_ids=customer_ids,
        history=weight_matrix(data.weights, customer_ids, item_ids),
        purchased=sp.csr_matrix(weight_matrix(purchases, customer_ids, item_ids), dtype=bool),
        segment=inputs.customers[config.fallback_segment]
        .astype(object)
        .where(inputs.customers[config.fallback_segment].notna(), None)
        .to_numpy(),
    )


def serve_view(recommender, view: View, audience: Audience, inputs: RecommenderInputs, config: RecommenderConfig):
    """The serving policy (ml.recommender.serving.serve) for `audience`, with popularity and
    features as known in `view`: one call for the nightly scoring and the holdout evaluation."""
    return serve(
        recommender,
        audience,
        inputs.item_ids,
        view.data.item_pairs,
        view.history,
        view.segment,
        inputs.eligible,
        config.k,
        config.model_min_items,
        config.scoring_batch_size,
    )
