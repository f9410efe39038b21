"""Who gets what: the model for customers it knows enough about, the default experience for the rest.

`serve` is the one policy both the evaluation (on the holdout) and the nightly scoring apply, so the
figures logged to MLflow describe what customers are actually shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.constants import CUSTOMER_ID, ITEM_ID, SCORING_BATCH_SIZE
from ml.recommender.baseline import item_popularity, top_k_excluding
from ml.recommender.model import HybridRecommender
from ml.recommender.ranking import MISSING, fill_from

MODEL = "model"
POPULAR_IN_SEGMENT = "popular_in_segment"
POPULAR_OVERALL = "popular_overall"
STRATEGIES = (MODEL, POPULAR_IN_SEGMENT, POPULAR_OVERALL)


@dataclass(frozen=True)
class Audience:
    """The customers to serve and what is known about them, aligned with the catalog `item_ids`."""

    customer_ids: pd.Index
    user_pairs: pd.DataFrame  # (entity_id, feature) of these customers
    segment: np.ndarray  # fallback segment label per customer (None when unknown)
    history_items: np.ndarray  # distinct items in each customer's history
    exclude: sp.csr_matrix  # customers x items never to recommend (already bought)


@dataclass(frozen=True)
class Served:
    items: np.ndarray  # customers x k item indices, MISSING-padded only when the catalog runs out
    scores: np.ndarray  # model score, or the item's share of (segment or overall) popularity
    strategy: np.ndarray  # customers x k strategy names ('' where empty)


def weight_matrix(weights: pd.DataFrame, customer_ids: pd.Index, item_ids: pd.Index) -> sp.csr_matrix:
    """customers x items summed weights (interactions of customers or items outside the indexes dropped)."""
    rows = customer_ids.get_indexer(weights[CUSTOMER_ID])
    cols = item_ids.get_indexer(weights[ITEM_ID])
    keep = (rows >= 0) & (cols >= 0)
    return sp.csr_matrix(
        (weights["weight"].to_numpy(dtype=np.float64)[keep], (rows[keep], cols[keep])),
        shape=(len(customer_ids), len(item_ids)),
    )


def popularity_share(matrix: sp.spmatrix) -> np.ndarray:
    popularity = item_popularity(matrix)
    total = popularity.sum()
    return popularity / total if total > 0 else popularity


def _scores_of(items: np.ndarray, share: np.ndarray) -> np.ndarray:
    return np.where(items == MISSING, np.nan, share[np.maximum(items, 0)]).astype(np.float32)


def popular_in_segment(
    audience: Audience, segment_of_history: np.ndarray, history: sp.csr_matrix, k: int, eligible: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Most popular items among the customers of each one's segment (one pass per segment value)."""
    items = np.full((len(audience.customer_ids), k), MISSING, dtype=np.int64)
    scores = np.full(items.shape, np.nan, dtype=np.float32)
    labels = pd.Series(audience.segment)
    for label in labels.dropna().unique():
        members = np.flatnonzero(labels.to_numpy() == label)
        share = popularity_share(history[segment_of_history == label])
        if share.sum() == 0:
            continue
        share = np.where(share > 0, share, -1.0)  # only items someone in the segment touched
        top = top_k_excluding(share, audience.exclude[members], k, eligible & (share > 0))
        items[members] = top
        scores[members] = _scores_of(top, share)
    return items, scores


def serve(
    recommender: HybridRecommender | None,
    audience: Audience,
    item_ids: pd.Index,
    item_pairs: pd.DataFrame,
    history: sp.csr_matrix,
    segment_of_history: np.ndarray,
    eligible: np.ndarray,
    k: int,
    model_min_items: int,
    batch_size: int = SCORING_BATCH_SIZE,
) -> Served:
    """Model top k for customers with at least `model_min_items` items in their history; popular
    items in their segment for the others; any slot still empty gets the most popular items overall.
    `history` is the customers x items weight matrix popularity is counted on (rows labelled by
    `segment_of_history`). Exactly k per customer whenever enough eligible, unbought items exist."""
    n = len(audience.customer_ids)
    items = np.full((n, k), MISSING, dtype=np.int64)
    scores = np.full((n, k), np.nan, dtype=np.float32)
    strategy = np.full((n, k), "", dtype=object)
    uses_model = (audience.history_items >= model_min_items) if recommender is not None else np.zeros(n, bool)
    if uses_model.any():
        members = np.flatnonzero(uses_model)
        top, top_scores = recommender.recommend(
            audience.customer_ids[members],
            audience.user_pairs,
            item_ids,
            item_pairs,
            k,
            exclude=audience.exclude[members],
            eligible=eligible,
            batch_size=batch_size,
        )
        items[members], scores[members] = top, top_scores
        strategy[members] = np.where(top == MISSING, "", MODEL)
    cold = np.flatnonzero(~uses_model)
    if len(cold):
        cold_audience = Audience(
            audience.customer_ids[cold],
            audience.user_pairs,
            audience.segment[cold],
            audience.history_items[cold],
            audience.exclude[cold],
        )
        top, top_scores = popular_in_segment(cold_audience, segment_of_history, history, k, eligible)
        items[cold], scores[cold] = top, top_scores
        strategy[cold] = np.where(top == MISSING, "", POPULAR_IN_SEGMENT)
    overall_share = popularity_share(history)
    # Never-touched items still fill a row (ranked last) so a small history cannot leave slots empty.
    overall = top_k_excluding(np.where(overall_share > 0, overall_share, -1.0), audience.exclude, k, eligible)
    filled, source = fill_from(items, overall)
    from_overall = source == 1
    # Rows are padded at the end, so the items kept from the first pass stay where they were.
    scores = np.where(from_overall, _scores_of(filled, overall_share), scores)
    strategy = np.where(from_overall, POPULAR_OVERALL, np.where(filled == MISSING, "", strategy))
    return Served(filled, scores.astype(np.float32), strategy)
