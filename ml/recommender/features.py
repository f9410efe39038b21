"""Side features of the hybrid model, as (entity, feature) pairs and the sparse matrices LightFM takes.

A feature is a string "column=value", so multi-valued fields (an item's tags) are several pairs.
Every entity the model was trained on also has its own identity column; a new customer or item has
only its features, which is how the hybrid model serves people and items it knows little about.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.constants import CUSTOMER_ID, ITEM_ID

ENTITY = "entity_id"
FEATURE = "feature"
PRICE_BANDS = 5
TAG_SEPARATOR = "|"
# History size bands: how much the model knows about a customer is itself a useful signal.
ACTIVITY_BANDS = ((0, "none"), (1, "1-2"), (3, "3-9"), (10, "10-29"), (30, "30+"))


def _pairs(ids: pd.Series, name: str, values: pd.Series) -> pd.DataFrame:
    known = values.notna()
    return pd.DataFrame({ENTITY: ids[known].to_numpy(), FEATURE: name + "=" + values[known].astype(str).to_numpy()})


def price_band_edges(prices: pd.Series) -> np.ndarray:
    """Inner quantile edges of the catalog's prices (PRICE_BANDS bands); empty when no prices."""
    known = pd.to_numeric(prices, errors="coerce").dropna().to_numpy(dtype=float)
    if len(known) == 0:
        return np.array([])
    return np.unique(np.quantile(known, np.linspace(0, 1, PRICE_BANDS + 1)[1:-1]))


def item_feature_pairs(items: pd.DataFrame, edges: np.ndarray) -> pd.DataFrame:
    """Category, each tag and the price band of every item."""
    ids = items[ITEM_ID]
    prices = pd.to_numeric(items["price"], errors="coerce")
    band = pd.Series(np.searchsorted(edges, prices.to_numpy(dtype=float), side="right"), index=items.index)
    tags = items["tags"].dropna().str.split(TAG_SEPARATOR).explode().str.strip()
    tags = tags[tags != ""]
    return pd.concat(
        [
            _pairs(ids, "category", items["category"]),
            _pairs(ids, "price_band", band.where(prices.notna()).astype("Int64")),
            _pairs(ids.loc[tags.index], "tag", tags),
        ],
        ignore_index=True,
    )


def activity_band(item_counts: pd.Series) -> pd.Series:
    """Label of the number of distinct items in a customer's history."""
    thresholds = np.array([low for low, _ in ACTIVITY_BANDS])
    labels = np.array([label for _, label in ACTIVITY_BANDS])
    return pd.Series(labels[np.searchsorted(thresholds, item_counts.to_numpy(), side="right") - 1], item_counts.index)


def user_feature_pairs(
    customers: pd.DataFrame, columns: list[str], history: pd.DataFrame, items: pd.DataFrame
) -> pd.DataFrame:
    """Demographic columns of customer_360 plus behavioral segments derived from `history`
    (customer_id, item_id, weight: the decayed interactions the model may see): the category with
    the most weight and the activity band. Deriving them here, not reading customer_360 at ds, keeps
    an evaluation fit from seeing its holdout."""
    ids = customers[CUSTOMER_ID]
    demographic = [_pairs(ids, column, customers[column]) for column in columns]
    with_category = history.merge(items[[ITEM_ID, "category"]], on=ITEM_ID, how="inner")
    by_category = with_category.groupby([CUSTOMER_ID, "category"], as_index=False)["weight"].sum()
    preferred = by_category.sort_values(["weight", "category"], ascending=[False, True]).drop_duplicates(CUSTOMER_ID)
    preferred = ids.to_frame().merge(preferred, on=CUSTOMER_ID, how="left")
    item_counts = history.groupby(CUSTOMER_ID)[ITEM_ID].nunique().reindex(ids, fill_value=0)
    behavioral = [
        _pairs(preferred[CUSTOMER_ID], "preferred_category", preferred["category"]),
        _pairs(ids, "activity", activity_band(item_counts).reset_index(drop=True).set_axis(ids.index)),
    ]
    return pd.concat([*demographic, *behavioral], ignore_index=True)


@dataclass(frozen=True)
class FeatureEncoder:
    """Column layout of one side's feature matrix: identity columns, then feature columns."""

    ids: pd.Index  # entities with an identity column (those seen in training)
    vocabulary: pd.Index  # feature names
    feature_weight: float  # weight of the features next to the identity (1)

    @classmethod
    def fit(cls, ids, pairs: pd.DataFrame, feature_weight: float) -> FeatureEncoder:
        vocabulary = pd.Index(sorted(pairs[FEATURE].unique())) if feature_weight > 0 else pd.Index([], dtype=object)
        return cls(pd.Index(ids), vocabulary, feature_weight)

    @property
    def width(self) -> int:
        return len(self.ids) + len(self.vocabulary)

    def transform(self, ids, pairs: pd.DataFrame) -> sp.csr_matrix:
        """Rows for `ids` (any, in order): identity where known, features where known, each row
        summing to 1 (LightFM's recommended normalization) or all zero when nothing is known."""
        ids = pd.Index(ids)
        identity_rows = np.flatnonzero(self.ids.get_indexer(ids) >= 0)
        identity_cols = self.ids.get_indexer(ids[identity_rows])
        rows = [identity_rows]
        cols = [identity_cols]
        values = [np.ones(len(identity_rows), dtype=np.float32)]
        if len(self.vocabulary):
            feature_rows = ids.get_indexer(pairs[ENTITY])
            feature_cols = self.vocabulary.get_indexer(pairs[FEATURE])
            usable = (feature_rows >= 0) & (feature_cols >= 0)
            rows.append(feature_rows[usable])
            cols.append(len(self.ids) + feature_cols[usable])
            values.append(np.full(int(usable.sum()), self.feature_weight, dtype=np.float32))
        matrix = sp.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(ids), self.width),
            dtype=np.float32,
        )
        matrix.sum_duplicates()
        row_sums = np.asarray(matrix.sum(axis=1)).ravel()
        scale = np.divide(1.0, row_sums, out=np.zeros_like(row_sums), where=row_sums > 0)
        return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix, dtype=np.float32)
