"""The popularity baseline: every customer gets the most popular items they have not bought yet.

It is the bar the model must clear on the same split in the same run, and the default experience
for customers the model knows too little about.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ml.constants import DEFAULT_K


def item_popularity(interaction_matrix: sp.spmatrix) -> np.ndarray:
    """Summed interaction weight per item (columns of a customers x items matrix)."""
    return np.asarray(interaction_matrix.sum(axis=0)).ravel()


def top_k_excluding(
    scores: np.ndarray, exclude: sp.spmatrix | None, k: int = DEFAULT_K, eligible: np.ndarray | None = None
) -> np.ndarray:
    """Top k item indices per customer from one score per item, skipping each customer's excluded
    items (non-zeros of `exclude`, customers x items) and items not `eligible` (e.g. inactive).
    Rows are padded with -1 when fewer than k items are left. Vectorized: no loop over customers."""
    n_items = len(scores)
    eligible = np.ones(n_items, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    ranked = np.flatnonzero(eligible)[np.argsort(-scores[eligible], kind="stable")]
    n_customers = exclude.shape[0] if exclude is not None else 1
    if exclude is None or exclude.nnz == 0:
        top = ranked[:k]
        return np.tile(np.pad(top, (0, k - len(top)), constant_values=-1), (n_customers, 1))
    exclude = sp.csr_matrix(exclude, dtype=bool)
    most_excluded = int(np.diff(exclude.indptr).max())
    candidates = np.broadcast_to(ranked[: k + most_excluded], (n_customers, min(len(ranked), k + most_excluded)))
    rows = np.repeat(np.arange(n_customers), candidates.shape[1])
    masked = np.asarray(exclude[rows, candidates.ravel()]).reshape(candidates.shape)
    # Stable sort on the mask keeps the popularity order among the allowed items and moves excluded ones last.
    order = np.argsort(masked, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(candidates, order, axis=1)
    top = np.where(np.take_along_axis(masked, order, axis=1), -1, top)
    return np.pad(top, ((0, 0), (0, k - top.shape[1])), constant_values=-1)
