"""Top K items per customer from embeddings, vectorized in batches: one matrix product per batch,
never a per-customer predict loop (see bench/bench_recommender.py for the side-by-side timing)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ml.constants import SCORING_BATCH_SIZE

MISSING = -1  # padding of an index row when fewer than k items are left
BLOCK = 64  # items per block in the two-stage top k (see _candidates)
NEVER = np.float32(-1e30)  # score of an item that must not be recommended (finite: no inf arithmetic)


def top_k_scores(
    user_embeddings: np.ndarray,
    item_embeddings: np.ndarray,
    item_biases: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    eligible: np.ndarray | None = None,
    batch_size: int = SCORING_BATCH_SIZE,
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
    # The item bias rides along as one more embedding dimension (users get a 1 there), so one matrix
    # product gives the final scores. Ineligible items and the padding up to whole blocks get a
    # bias of NEVER; excluded pairs are set to NEVER after the product.
    n_blocks = -(-n_items // BLOCK)
    dimensions = item_embeddings.shape[1]
    items = np.zeros((n_blocks * BLOCK, dimensions + 1), dtype=np.float32)
    items[:n_items, :dimensions] = item_embeddings
    items[:, dimensions] = NEVER
    eligible = np.ones(n_items, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    items[:n_items, dimensions] = np.where(eligible, np.asarray(item_biases, dtype=np.float32), NEVER)
    items_t = np.ascontiguousarray(items.T)
    exclude = sp.csr_matrix(exclude, dtype=bool) if exclude is not None else None
    width = min(k, n_items)
    users = np.ones((min(batch_size, n_users), dimensions + 1), dtype=np.float32)
    for start in range(0, n_users, batch_size):
        stop = min(start + batch_size, n_users)
        batch = users[: stop - start]
        batch[:, :dimensions] = user_embeddings[start:stop]
        scores = batch @ items_t
        if exclude is not None:
            block = exclude[start:stop].tocoo()
            scores[block.row, block.col] = NEVER
        write_top(top, top_scores, start, scores, width, n_blocks)
    return top, top_scores


def write_top(top: np.ndarray, top_scores: np.ndarray, start: int, scores: np.ndarray, width: int, n_blocks: int):
    """Write the best `width` items of each row of `scores` (customers start.. x n_blocks * BLOCK
    item slots, NEVER where not recommendable) into rows start.. of `top` and `top_scores`."""
    rows, columns, values = _candidates(scores, width, n_blocks)
    # Sorted by customer, then best first: the first `width` of each customer are its top.
    order = np.lexsort((-values, rows))
    rows, columns, values = rows[order], columns[order], values[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    kept = rank < width
    top[start + rows[kept], rank[kept]] = columns[kept]
    top_scores[start + rows[kept], rank[kept]] = values[kept]


def _candidates(scores: np.ndarray, k: int, n_blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, score) of the recommendable entries that can be in their row's top k.

    Items are split into blocks and the k-th highest block maximum is a lower bound of the row's
    k-th best score (each of the k best blocks holds an item at least that good), so only entries
    at or above it are kept: usually little more than k per row, found in two vectorized passes
    instead of a partial sort of every row. Block c holds the items c, c + n_blocks, ...: that
    interleaving makes the block maxima one pass over contiguous memory."""
    if n_blocks > k:
        block_max = scores.reshape(scores.shape[0], BLOCK, n_blocks).max(axis=1)
        threshold = np.partition(block_max, n_blocks - k, axis=1)[:, n_blocks - k]
    else:
        threshold = np.full(scores.shape[0], NEVER)
    # flatnonzero on the flat mask is many times faster than a 2-d nonzero.
    flat = np.flatnonzero(scores >= np.maximum(threshold, NEVER / 2)[:, None])
    return flat // scores.shape[1], flat % scores.shape[1], scores.ravel()[flat]


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
