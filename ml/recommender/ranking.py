"""Top K items per customer from embeddings, vectorized in batches: one matrix product per batch,
never a per-customer predict loop (see bench/bench_recommender.py for the side-by-side timing)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

MISSING = -1  # padding of an index row when fewer than k items are left


def top_k_scores(
    user_embeddings: np.ndarray,
    item_embeddings: np.ndarray,
    item_biases: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    eligible: np.ndarray | None = None,
    batch_size: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """(item indices, scores), each users x k, best first. Scores are user . item + item bias
    (LightFM's score; the user bias is the same for every item, so it cannot change a ranking).
    Items that are excluded for the customer (non-zeros of `exclude`) or not `eligible` are never
    returned; rows are padded with MISSING and NaN when fewer than k items are left."""
    n_users, n_items = user_embeddings.shape[0], item_embeddings.shape[0]
    top = np.full((n_users, k), MISSING, dtype=np.int64)
    top_scores = np.full((n_users, k), np.nan, dtype=np.float32)
    if n_items == 0 or n_users == 0:
        return top, top_scores
    item_embeddings = np.ascontiguousarray(item_embeddings, dtype=np.float32)
    penalty = np.where(
        np.ones(n_items, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool), 0.0, -np.inf
    ).astype(np.float32)
    offsets = (np.asarray(item_biases, dtype=np.float32) + penalty)[None, :]
    exclude = sp.csr_matrix(exclude, dtype=bool) if exclude is not None else None
    width = min(k, n_items)
    for start in range(0, n_users, batch_size):
        stop = min(start + batch_size, n_users)
        scores = np.asarray(user_embeddings[start:stop], dtype=np.float32) @ item_embeddings.T
        scores += offsets
        if exclude is not None:
            block = exclude[start:stop].tocoo()
            scores[block.row, block.col] = -np.inf
        candidates = np.argpartition(-scores, width - 1, axis=1)[:, :width] if width < n_items else None
        if candidates is None:
            candidates = np.broadcast_to(np.arange(n_items), (stop - start, n_items))
        candidate_scores = np.take_along_axis(scores, candidates, axis=1)
        order = np.argsort(-candidate_scores, axis=1, kind="stable")
        best = np.take_along_axis(candidates, order, axis=1)
        best_scores = np.take_along_axis(candidate_scores, order, axis=1)
        usable = np.isfinite(best_scores)
        top[start:stop, :width] = np.where(usable, best, MISSING)
        top_scores[start:stop, :width] = np.where(usable, best_scores, np.nan)
    return top, top_scores


def fill_from(primary: np.ndarray, secondary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complete each row of `primary` (MISSING-padded) with the items of `secondary` it does not
    hold yet, in order. Returns (items, source) where source is 0 for primary, 1 for secondary and
    -1 for a slot still empty; both have primary's shape."""
    k = primary.shape[1]
    # A secondary item already in the row (or missing) cannot be used again.
    duplicate = (secondary[:, :, None] == primary[:, None, :]).any(axis=2) | (secondary == MISSING)
    candidates = np.concatenate([primary, np.where(duplicate, MISSING, secondary)], axis=1)
    source = np.concatenate([np.zeros_like(primary), np.ones_like(secondary)], axis=1)
    # Stable sort by "is missing" moves the usable items to the front, keeping their order.
    order = np.argsort(candidates == MISSING, axis=1, kind="stable")[:, :k]
    items = np.take_along_axis(candidates, order, axis=1)
    return items, np.where(items == MISSING, -1, np.take_along_axis(source, order, axis=1))
