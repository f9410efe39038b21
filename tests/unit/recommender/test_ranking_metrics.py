"""Ranking metrics on tiny hand-built cases, and their properties on random ones."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.recommender.metrics import catalog_coverage, map_at_k, ndcg_at_k, precision_at_k, ranking_metrics, recall_at_k

# Three users, five items. User 0 bought items 1 and 3; user 1 bought item 0; user 2 bought nothing.
TRUTH = sp.csr_matrix(np.array([[0, 1, 0, 1, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]]))
RECOMMENDED = np.array([[1, 2, 3], [4, 2, 0], [0, 1, 2]])


def test_precision_and_recall_by_hand():
    # user 0: hits at ranks 1 and 3 -> 2/3; user 1: hit at rank 3 -> 1/3; user 2 has no truth: left out.
    assert precision_at_k(TRUTH, RECOMMENDED, k=3) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert recall_at_k(TRUTH, RECOMMENDED, k=3) == pytest.approx((2 / 2 + 1 / 1) / 2)
    assert precision_at_k(TRUTH, RECOMMENDED, k=1) == pytest.approx((1 + 0) / 2)


def test_ndcg_by_hand():
    user_0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    user_1 = (1 / math.log2(4)) / 1
    assert ndcg_at_k(TRUTH, RECOMMENDED, k=3) == pytest.approx((user_0 + user_1) / 2)


def test_map_by_hand():
    user_0 = (1 / 1 + 2 / 3) / 2
    user_1 = (1 / 3) / 1
    assert map_at_k(TRUTH, RECOMMENDED, k=3) == pytest.approx((user_0 + user_1) / 2)


def test_padding_and_coverage():
    padded = np.array([[1, -1, -1], [-1, -1, -1], [-1, -1, -1]])
    assert precision_at_k(TRUTH, padded, k=3) == pytest.approx((1 / 3 + 0) / 2)
    assert catalog_coverage(RECOMMENDED, n_items=5, k=3) == pytest.approx(5 / 5)
    assert catalog_coverage(padded, n_items=5, k=3) == pytest.approx(1 / 5)


def test_a_perfect_ranking_scores_one_and_nobody_with_truth_scores_zero():
    truth = sp.csr_matrix(np.eye(4))
    perfect = np.arange(4).reshape(4, 1)
    metrics = ranking_metrics(truth, perfect, n_items=4, k=1)
    assert metrics == {
        "precision_at_1": 1.0,
        "recall_at_1": 1.0,
        "ndcg_at_1": 1.0,
        "map_at_1": 1.0,
        "catalog_coverage_at_1": 1.0,
    }
    empty = sp.csr_matrix((2, 3))
    assert ndcg_at_k(empty, np.zeros((2, 2), dtype=int), k=2) == 0.0


def test_mismatched_shapes_are_an_error():
    with pytest.raises(ValueError, match="truth has 3 users"):
        precision_at_k(TRUTH, RECOMMENDED[:2], k=3)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(2, 12), st.integers(1, 6), st.integers(0, 10_000))
def test_every_metric_is_between_zero_and_one_and_perfect_order_is_best(n_users, n_items, k, seed):
    rng = np.random.default_rng(seed)
    truth = sp.csr_matrix(rng.random((n_users, n_items)) < 0.3)
    recommended = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :k]
    metrics = ranking_metrics(truth, recommended, n_items=n_items, k=k)
    assert all(0.0 <= value <= 1.0 for value in metrics.values())
    # Ranking the true items first never scores worse on NDCG than a random order.
    truth_first = np.argsort(-truth.toarray().astype(float) + rng.random((n_users, n_items)) * 0.1, axis=1)[:, :k]
    assert ndcg_at_k(truth, truth_first, k) >= ndcg_at_k(truth, recommended, k) - 1e-12
