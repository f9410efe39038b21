"""The popularity baseline: hand-built cases, and its NDCG on the demo split as a reference figure."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ml.recommender.baseline import item_popularity, top_k_excluding

SCORES = np.array([5.0, 1.0, 9.0, 3.0, 7.0])  # popularity order: 2, 4, 0, 3, 1


def test_everyone_gets_the_most_popular_items_they_have_not_bought():
    exclude = sp.csr_matrix(np.array([[0, 0, 1, 0, 1], [0, 0, 0, 0, 0]]))
    top = top_k_excluding(SCORES, exclude, k=3)
    assert top.tolist() == [[0, 3, 1], [2, 4, 0]]


def test_ineligible_items_are_skipped_and_short_rows_are_padded():
    eligible = np.array([True, True, False, True, True])
    exclude = sp.csr_matrix(np.array([[1, 1, 0, 1, 0]]))
    assert top_k_excluding(SCORES, exclude, k=3, eligible=eligible).tolist() == [[4, -1, -1]]
    assert top_k_excluding(SCORES, None, k=2).tolist() == [[2, 4]]


def test_popularity_sums_weights_per_item():
    matrix = sp.csr_matrix(np.array([[1.0, 0.0, 2.0], [0.5, 0.0, 0.0]]))
    assert item_popularity(matrix).tolist() == [1.5, 0.0, 2.0]
