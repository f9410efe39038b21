"""EASE, the recommender search's second model family: a closed-form item-item model.

Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019. With X the customers x items
matrix (1 for a purchase, `view_weight` for an item only viewed or carted) and G = X'X, the item
weights are B = I - P / diag(P) with P = (G + l2 I)^-1 (diagonal forced to 0), and a customer's
scores are their row of X times B. No epochs, no sampling: one fit is a matrix inverse over the
`max_items` most bought items, so its cost is fixed by the catalog, not by the customers.

On data where a customer's next purchases follow from the items they bought (films, books, grocery
baskets) it usually ranks better than factor models; LightFM stays the model of customers and items
with features. The search fits both and the gate judges whichever wins on the validation window.
No well-kept library ships EASE on its own (recbole and rectools bring whole frameworks): the closed
form is the few lines below.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.constants import CUSTOMER_ID, ITEM_ID, SCORING_BATCH_SIZE
from ml.recommender.ranking import BLOCK, MISSING, NEVER, write_top
from ml.recommender.settings import EaseSettings


@dataclass(frozen=True)
class KnownCustomers:
    ids: pd.Index  # the customers with a row in the model


@dataclass
class EaseRecommender:
    """Item-item weights over `item_ids`, and each known customer's row of X as of the fit."""

    weights: np.ndarray  # items x items, float32, zero diagonal
    item_ids: pd.Index  # the items modelled (the most bought, at most max_items)
    rows: sp.csr_matrix  # known customers x item_ids, float32
    users: KnownCustomers
    settings: EaseSettings
    trained_through: dt.datetime
    epochs: int = 0  # closed form: kept for the same logging as LightFM
    history: list[tuple[int, float]] = field(default_factory=list)

    def recommend(
        self,
        customer_ids,
        user_pairs: pd.DataFrame,
        item_ids,
        item_pairs: pd.DataFrame,
        k: int,
        exclude: sp.csr_matrix | None = None,
        eligible: np.ndarray | None = None,
        batch_size: int = SCORING_BATCH_SIZE,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top k indices into `item_ids` and their scores; MISSING for a customer the model has no
        row for (the serving policy fills those from popularity). Features are not used."""
        item_ids = pd.Index(item_ids)
        n_users, n_items = len(customer_ids), len(item_ids)
        top = np.full((n_users, k), MISSING, dtype=np.int64)
        top_scores = np.full((n_users, k), np.nan, dtype=np.float32)
        if n_users == 0 or n_items == 0:
            return top, top_scores
        # The weights laid out over the catalog asked for (padded to whole blocks); an item the
        # model does not know, or that is not eligible, gets NEVER through the bias row.
        n_blocks = -(-n_items // BLOCK)
        catalog = np.zeros((len(self.item_ids), n_blocks * BLOCK), dtype=np.float32)
        modelled = self.item_ids.get_indexer(item_ids)
        present = modelled >= 0
        catalog[:, np.flatnonzero(present)] = self.weights[:, modelled[present]]
        bias = np.full(n_blocks * BLOCK, NEVER, dtype=np.float32)
        allowed = present & (np.ones(n_items, bool) if eligible is None else np.asarray(eligible, bool))
        bias[:n_items] = np.where(allowed, 0.0, NEVER)
        positions = self.users.ids.get_indexer(pd.Index(customer_ids))
        rows = self.rows[np.maximum(positions, 0)]
        has_row = (positions >= 0) & (np.diff(rows.indptr) > 0)
        exclude = sp.csr_matrix(exclude, dtype=bool) if exclude is not None else None
        width = min(k, n_items)
        for start in range(0, n_users, batch_size):
            stop = min(start + batch_size, n_users)
            scores = np.asarray(rows[start:stop] @ catalog) + bias
            if exclude is not None:
                block = exclude[start:stop].tocoo()
                scores[block.row, block.col] = NEVER
            write_top(top, top_scores, start, scores, width, n_blocks)
        top[~has_row] = MISSING
        top_scores[~has_row] = np.nan
        return top, top_scores

    def similar_items(
        self, item_ids, item_pairs: pd.DataFrame, n: int, eligible: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """EASE's weights B[c, j] (how much having item c raises item j): each item scored as a
        customer whose history is that item alone; MISSING for items the model does not hold."""
        as_customers = replace(
            self,
            rows=sp.identity(len(self.item_ids), dtype=np.float32, format="csr"),
            users=KnownCustomers(self.item_ids),
        )
        itself = sp.identity(len(item_ids), dtype=bool, format="csr")
        return as_customers.recommend(item_ids, item_pairs, item_ids, item_pairs, n, exclude=itself, eligible=eligible)


def customer_rows(data, settings: EaseSettings, item_ids: pd.Index | None = None):
    """(customers, item ids, X): 1 where bought, view_weight where only viewed or carted."""
    purchases = data.purchases[[CUSTOMER_ID, ITEM_ID]].drop_duplicates()
    touched = data.weights[[CUSTOMER_ID, ITEM_ID]]
    if item_ids is None:
        # The most bought items; ties by id, so the same items are kept on every run.
        counts = purchases[ITEM_ID].value_counts().sort_index().sort_values(ascending=False, kind="stable")
        item_ids = pd.Index(sorted(counts.index[: settings.max_items]))
    frames = [purchases.assign(value=1.0)]
    if settings.view_weight > 0:
        frames.append(touched.assign(value=settings.view_weight))
    pairs = pd.concat(frames, ignore_index=True)
    pairs = pairs[pairs[ITEM_ID].isin(item_ids)]
    # A purchase outranks a view of the same item: the largest value of a pair wins.
    pairs = pairs.groupby([CUSTOMER_ID, ITEM_ID], as_index=False, sort=False)["value"].max()
    customers = pd.Index(sorted(pairs[CUSTOMER_ID].unique()))
    matrix = sp.csr_matrix(
        (
            pairs["value"].to_numpy(dtype=np.float32),
            (customers.get_indexer(pairs[CUSTOMER_ID]), item_ids.get_indexer(pairs[ITEM_ID])),
        ),
        shape=(len(customers), len(item_ids)),
    )
    return customers, item_ids, matrix


def fit_ease(
    data, settings: EaseSettings, validate: Callable[[EaseRecommender], float] | None = None
) -> EaseRecommender:
    """The closed form on `data` (ml.recommender.model.TrainingData); with `validate`, its score is
    recorded as the one point of the history (the search compares it with LightFM's best)."""
    customers, item_ids, matrix = customer_rows(data, settings)
    gram = (matrix.T @ matrix).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += settings.l2
    inverse = np.linalg.inv(gram) if len(item_ids) else gram
    weights = -inverse / np.diag(inverse) if len(item_ids) else inverse
    np.fill_diagonal(weights, 0.0)
    recommender = EaseRecommender(
        weights.astype(np.float32), item_ids, matrix, KnownCustomers(customers), settings, data.trained_through
    )
    if validate is not None:
        recommender.history.append((0, validate(recommender)))
    return recommender
