"""The hybrid LightFM recommender: the model with its id maps and feature encoders, and its training
with early stopping on validation NDCG."""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightfm import LightFM

from ml.constants import CUSTOMER_ID, ITEM_ID, SCORING_BATCH_SIZE, SEED
from ml.recommender.features import FeatureEncoder
from ml.recommender.ranking import top_k_scores
from ml.recommender.settings import LightFMSettings

log = logging.getLogger(__name__)


@dataclass
class HybridRecommender:
    """A fitted LightFM model and everything needed to score customers and items it has or has not seen."""

    model: LightFM
    users: FeatureEncoder
    items: FeatureEncoder
    price_band_edges: np.ndarray
    settings: LightFMSettings
    epochs: int
    trained_through: dt.datetime  # exclusive end of the interactions it was fitted on
    history: list[tuple[int, float]] = field(default_factory=list)  # (epoch, validation NDCG)

    def item_vectors(self, item_ids, item_pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        biases, embeddings = self.model.get_item_representations(self.items.transform(item_ids, item_pairs))
        return biases, embeddings

    def user_vectors(self, customer_ids, user_pairs: pd.DataFrame) -> np.ndarray:
        return self.model.get_user_representations(self.users.transform(customer_ids, user_pairs))[1]

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
        """Top k indices into `item_ids` and their scores for each of `customer_ids`."""
        item_biases, item_embeddings = self.item_vectors(item_ids, item_pairs)
        return top_k_scores(
            self.user_vectors(customer_ids, user_pairs),
            item_embeddings,
            item_biases,
            k,
            exclude=exclude,
            eligible=eligible,
            batch_size=batch_size,
        )


@dataclass(frozen=True)
class TrainingData:
    """What one fit sees: decayed weights of interactions before `trained_through`, and features."""

    weights: pd.DataFrame  # customer_id, item_id, weight
    user_pairs: pd.DataFrame
    item_ids: pd.Index  # the catalog
    item_pairs: pd.DataFrame
    price_band_edges: np.ndarray
    trained_through: dt.datetime
    purchases: pd.DataFrame | None = None  # customer_id, item_id of every purchase (EASE's rows)


def fit(
    data: TrainingData,
    settings: LightFMSettings,
    epochs: int | None = None,
    validate: Callable[[HybridRecommender], float] | None = None,
    eval_every: int = 5,
    patience: int = 2,
    num_threads: int = 1,
) -> HybridRecommender:
    """Fit on `data`. With `validate` (higher is better), evaluate every `eval_every` epochs up to
    settings.max_epochs and keep the best model, stopping after `patience` evaluations without
    gain; without it, train exactly `epochs` (default settings.max_epochs)."""
    customers = pd.Index(sorted(data.weights[CUSTOMER_ID].unique()))
    users = FeatureEncoder.fit(customers, data.user_pairs, settings.user_feature_weight)
    items = FeatureEncoder.fit(data.item_ids, data.item_pairs, settings.item_feature_weight)
    rows = customers.get_indexer(data.weights[CUSTOMER_ID])
    cols = data.item_ids.get_indexer(data.weights[ITEM_ID])
    interactions = sp.coo_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(customers), len(data.item_ids))
    )
    sample_weight = sp.coo_matrix(
        (data.weights["weight"].to_numpy(dtype=np.float32) ** settings.sample_weight_power, (rows, cols)),
        shape=interactions.shape,
    )
    user_features = users.transform(customers, data.user_pairs)
    item_features = items.transform(data.item_ids, data.item_pairs)
    model = LightFM(
        no_components=settings.no_components,
        loss=settings.loss,
        learning_rate=settings.learning_rate,
        item_alpha=settings.item_alpha,
        user_alpha=settings.user_alpha,
        random_state=np.random.RandomState(SEED),
    )
    recommender = HybridRecommender(model, users, items, data.price_band_edges, settings, 0, data.trained_through)
    weighted = settings.sample_weight_power > 0 and settings.loss not in ("warp-kos",)

    def train(n_epochs: int) -> None:
        model.fit_partial(
            interactions,
            user_features=user_features,
            item_features=item_features,
            sample_weight=sample_weight if weighted else None,
            epochs=n_epochs,
            num_threads=num_threads,
        )
        recommender.epochs += n_epochs

    if validate is None:
        train(epochs or settings.max_epochs)
        return recommender
    best, best_score, evaluations_without_gain = None, -np.inf, 0
    while recommender.epochs < settings.max_epochs and evaluations_without_gain < patience:
        train(min(eval_every, settings.max_epochs - recommender.epochs))
        score = validate(recommender)
        recommender.history.append((recommender.epochs, score))
        log.info("epoch %d validation score %.4f", recommender.epochs, score)
        if score > best_score:
            best, best_score, evaluations_without_gain = copy.deepcopy(recommender), score, 0
        else:
            evaluations_without_gain += 1
    best.history = list(recommender.history)
    return best
