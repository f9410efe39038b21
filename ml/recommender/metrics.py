"""Ranking metrics for top-K recommendations, vectorized over users.

Inputs, shared by every metric:
- `truth`: a users x items sparse matrix; non-zero where the user interacted with the item in the
  evaluation window (what a good recommender should have ranked high).
- `recommended`: an integer array, users x (at least k) item indices in rank order; -1 pads a row
  that has fewer than k recommendations.

Users without any truth are left out of the averages (nothing can be found for them), as in
microsoft/recommenders. Every metric is between 0 and 1.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ml.constants import DEFAULT_K


def _hits(truth: sp.csr_matrix, recommended: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(hit matrix users x k, number of true items per user) for users with any truth."""
    truth = sp.csr_matrix(truth, dtype=bool)
    top = np.asarray(recommended)[:, :k]
    if top.shape[0] != truth.shape[0]:
        raise ValueError(f"truth has {truth.shape[0]} users, recommended has {top.shape[0]}")
    rows = np.repeat(np.arange(top.shape[0]), top.shape[1])
    valid = top.ravel() >= 0
    hits = np.zeros(top.size, dtype=bool)
    hits[valid] = np.asarray(truth[rows[valid], top.ravel()[valid]]).ravel()
    hits = hits.reshape(top.shape)
    n_true = np.asarray(truth.sum(axis=1)).ravel()
    has_truth = n_true > 0
    return hits[has_truth], n_true[has_truth]


def precision_at_k(truth, recommended, k: int = DEFAULT_K) -> float:
    """Share of the top k that are relevant, averaged over users; between 0 and 1."""
    hits, _ = _hits(truth, recommended, k)
    return float(hits.sum(axis=1).mean() / k) if len(hits) else 0.0


def recall_at_k(truth, recommended, k: int = DEFAULT_K) -> float:
    """Share of a user's relevant items found in the top k, averaged over users; between 0 and 1."""
    hits, n_true = _hits(truth, recommended, k)
    return float((hits.sum(axis=1) / n_true).mean()) if len(hits) else 0.0


def ndcg_per_user(truth, recommended, k: int = DEFAULT_K) -> np.ndarray:
    """Normalized discounted cumulative gain of each user with any truth, binary relevance (Järvelin &
    Kekäläinen 2002): DCG = sum of 1 / log2(rank + 1) over hits, divided by the DCG of a perfect ranking
    of min(relevant items, k); each between 0 and 1, users in the order of `truth`'s rows."""
    hits, n_true = _hits(truth, recommended, k)
    if not len(hits):
        return np.zeros(0)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discounts[: hits.shape[1]]).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(n_true, k) - 1]
    return dcg / ideal


def ndcg_at_k(truth, recommended, k: int = DEFAULT_K) -> float:
    """NDCG@k (ndcg_per_user) averaged over users with any truth; between 0 and 1."""
    per_user = ndcg_per_user(truth, recommended, k)
    return float(per_user.mean()) if len(per_user) else 0.0


def map_at_k(truth, recommended, k: int = DEFAULT_K) -> float:
    """Mean average precision at k: per user, the mean of precision@i over the ranks i that are
    hits, divided by min(relevant items, k); averaged over users; between 0 and 1."""
    hits, n_true = _hits(truth, recommended, k)
    if not len(hits):
        return 0.0
    precision_at_rank = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    average_precision = (precision_at_rank * hits).sum(axis=1) / np.minimum(n_true, k)
    return float(average_precision.mean())


def catalog_coverage(recommended, n_items: int, k: int = DEFAULT_K) -> float:
    """Share of the catalog that appears in anyone's top k; between 0 and 1."""
    top = np.asarray(recommended)[:, :k]
    return float(len(np.unique(top[top >= 0])) / n_items) if n_items else 0.0


def ranking_metrics(truth, recommended, n_items: int, k: int = DEFAULT_K) -> dict[str, float]:
    """Every metric above, keyed as logged to MLflow (`precision_at_10`, ...)."""
    return {
        f"precision_at_{k}": precision_at_k(truth, recommended, k),
        f"recall_at_{k}": recall_at_k(truth, recommended, k),
        f"ndcg_at_{k}": ndcg_at_k(truth, recommended, k),
        f"map_at_{k}": map_at_k(truth, recommended, k),
        f"catalog_coverage_at_{k}": catalog_coverage(recommended, n_items, k),
    }
