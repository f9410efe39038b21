"""What the online service needs from the recommender beyond each customer's list: every item's
nearest items (`marts.item_neighbors`) and the popular items a stranger gets (`marts.popular_items`).

Both are written for ds by score_recommendations' plan, from the same model version and the same
view of history as the night's lists, so a page re-ranked around a viewed item stays consistent with
the customer's nightly list. Neighbors come from the model's item-item structure (the family's
`similar_items`: LightFM's embedding cosine, EASE's weights); when no model serves, from
co-occurrence in customers' histories (item-based collaborative filtering's cosine, Sarwar et al.
2001), so a product page is never empty.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.constants import ITEM_ID
from ml.recommender.baseline import top_k_excluding
from ml.recommender.data import RecommenderInputs, View
from ml.recommender.ranking import MISSING
from ml.recommender.serving import popularity_share
from ml.warehouse.declared import ddl
from ml.warehouse.partitions import replace_partition

NEIGHBORS = "marts.item_neighbors"
POPULAR = "marts.popular_items"
NEIGHBORS_PER_ITEM = 20
MODEL = "model"
CO_OCCURRENCE = "co_occurrence"


def co_occurrence_neighbors(history: sp.csr_matrix, n: int, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of the items' columns in the customers x items history (who touched both), the n nearest
    other eligible items of each item; MISSING where fewer items share a customer with it."""
    touched = sp.csr_matrix(history != 0, dtype=np.float32)
    norms = np.sqrt(np.asarray(touched.sum(axis=0)).ravel())
    unit = touched @ sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0))
    similarity = sp.csr_matrix(unit.T @ unit)  # items x items, sparse: only items that share a customer
    n_items = similarity.shape[0]
    top = np.full((n_items, n), MISSING, dtype=np.int64)
    scores = np.full((n_items, n), np.nan, dtype=np.float32)
    width = min(n, max(n_items - 1, 0))
    for start in range(0, n_items, 1024):
        stop = min(start + 1024, n_items)
        block = similarity[start:stop].toarray()
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0  # never the item itself
        block[:, ~np.asarray(eligible, bool)] = 0.0
        if width == 0:
            continue
        candidates = np.argpartition(-block, width - 1, axis=1)[:, :width]
        values = np.take_along_axis(block, candidates, axis=1)
        order = np.argsort(-values, axis=1, kind="stable")
        best = np.take_along_axis(candidates, order, axis=1)
        best_values = np.take_along_axis(values, order, axis=1)
        related = best_values > 0
        top[start:stop, :width] = np.where(related, best, MISSING)
        scores[start:stop, :width] = np.where(related, best_values, np.nan)
    return top, scores


def neighbor_rows(ds: dt.date, recommender, inputs: RecommenderInputs, view: View, version: str | None) -> pd.DataFrame:
    """The rows of marts.item_neighbors for ds: the serving model's, or co-occurrence without one."""
    item_ids = inputs.item_ids
    if recommender is not None:
        top, scores = recommender.similar_items(item_ids, view.data.item_pairs, NEIGHBORS_PER_ITEM, inputs.eligible)
        strategy = MODEL
    else:
        top, scores = co_occurrence_neighbors(view.history, NEIGHBORS_PER_ITEM, inputs.eligible)
        strategy = CO_OCCURRENCE
    found = top != MISSING
    n = top.shape[1]
    return pd.DataFrame(
        {
            "ds": ds,
            ITEM_ID: np.repeat(item_ids.to_numpy(), n)[found.ravel()],
            "rank": (np.cumsum(found, axis=1))[found].astype(np.int32),
            "neighbor_item_id": item_ids.to_numpy()[top[found]],
            "similarity": scores[found].astype(float),
            "strategy": strategy,
            "model_version": version if recommender is not None else None,
        }
    )


def popular_rows(ds: dt.date, inputs: RecommenderInputs, view: View, k: int) -> pd.DataFrame:
    """The rows of marts.popular_items for ds: the k most popular eligible items (popular_overall)."""
    share = popularity_share(view.history)
    top = top_k_excluding(np.where(share > 0, share, -1.0), None, k, inputs.eligible)[0]
    top = top[top != MISSING]
    return pd.DataFrame(
        {
            "ds": ds,
            "rank": np.arange(1, len(top) + 1, dtype=np.int32),
            ITEM_ID: inputs.item_ids.to_numpy()[top],
            "score": share[top].astype(float),
        }
    )


def write_item_structure(
    ds: dt.date, recommender, inputs: RecommenderInputs, view: View, version: str | None, k: int
) -> dict[str, int]:
    """Replace the ds partitions of marts.item_neighbors and marts.popular_items."""
    neighbors = neighbor_rows(ds, recommender, inputs, view, version)
    popular = popular_rows(ds, inputs, view, k)
    replace_partition(NEIGHBORS, ddl(NEIGHBORS), ds, neighbors, order_by="item_id, rank", purge_erased=False)
    replace_partition(POPULAR, ddl(POPULAR), ds, popular, order_by="rank", purge_erased=False)
    return {"item_neighbors": len(neighbors), "popular_items": len(popular)}
