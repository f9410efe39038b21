"""What every recommender family is to the rest of the package: the search, the training run, the
bundle and serving call a model only through this protocol (LightFM's HybridRecommender in
ml.recommender.model, EaseRecommender in ml.recommender.ease)."""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.constants import SCORING_BATCH_SIZE


@runtime_checkable
class Recommender(Protocol):
    settings: object  # the family's settings (LightFMSettings, EaseSettings): logged with the run
    epochs: int  # training epochs (0 for a closed form)
    trained_through: dt.datetime  # the exclusive end of the interactions it was fitted on
    history: list[tuple[int, float]]  # (epoch, validation NDCG) as it trained

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
        """Top k indices into `item_ids` and their scores for each of `customer_ids` (MISSING where the
        model has nothing for a customer: the serving policy fills those). `exclude`: customer x item
        pairs never to recommend; `eligible`: the items that may be recommended."""
        ...

    def similar_items(
        self, item_ids, item_pairs: pd.DataFrame, n: int, eligible: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each of `item_ids`, the n most similar other items (indices into `item_ids`) and their
        similarity, best first, MISSING-padded: the model's item-item structure, used to re-rank
        around the item a customer is looking at."""
        ...
