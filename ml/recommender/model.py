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
    warm_started_from: dt.datetime | None = None  # trained_through of the fit it continued, if it did

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

    def similar_items(
        self, item_ids, item_pairs: pd.DataFrame, n: int, eligible: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarity of the items' embeddings (their own ids' and features'): the n nearest
        other eligible items of each item."""
        _, embeddings = self.item_vectors(item_ids, item_pairs)
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        unit = np.divide(embeddings, norms, out=np.zeros_like(embeddings), where=norms > 0).astype(np.float32)
        itself = sp.identity(len(unit), dtype=bool, format="csr")
        return top_k_scores(unit, unit, np.zeros(len(unit), np.float32), n, exclude=itself, eligible=eligible)


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


def _interaction_matrices(data: TrainingData, customers: pd.Index, settings: LightFMSettings, pairs: pd.DataFrame):
    """LightFM's interactions and sample weights for `pairs` (rows of data.weights), shaped
    customers x catalog."""
    rows = customers.get_indexer(pairs[CUSTOMER_ID])
    cols = data.item_ids.get_indexer(pairs[ITEM_ID])
    shape = (len(customers), len(data.item_ids))
    interactions = sp.coo_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    weighted = settings.sample_weight_power > 0 and settings.loss not in ("warp-kos",)
    sample_weight = (
        sp.coo_matrix((pairs["weight"].to_numpy(dtype=np.float32) ** settings.sample_weight_power, (rows, cols)), shape)
        if weighted
        else None
    )
    return interactions, sample_weight


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
    interactions, sample_weight = _interaction_matrices(data, customers, settings, data.weights)
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

    def train(n_epochs: int) -> None:
        model.fit_partial(
            interactions,
            user_features=user_features,
            item_features=item_features,
            sample_weight=sample_weight,
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


# LightFM's per-feature state, by side: embeddings, biases and their adagrad accumulators.
_STATE = (
    "{}_embeddings",
    "{}_embedding_gradients",
    "{}_embedding_momentum",
    "{}_biases",
    "{}_bias_gradients",
    "{}_bias_momentum",
)


def _carry_over(model: LightFM, side: str, old: FeatureEncoder, new: FeatureEncoder) -> None:
    """Re-lay `model`'s `side` state from `old`'s columns to `new`'s: a column of both (the same
    entity id or feature name) keeps its learned vectors and adagrad accumulators; a new one starts
    as LightFM starts every column (small random embedding, zero bias, fresh accumulators); a column
    that left (an erased customer, a withdrawn item, a feature value no longer seen) is dropped."""
    kept_new, kept_old = [], []
    for offset_new, offset_old, new_keys, old_keys in (
        (0, 0, new.ids, old.ids),
        (len(new.ids), len(old.ids), new.vocabulary, old.vocabulary),
    ):
        positions = pd.Index(old_keys).get_indexer(new_keys)
        found = np.flatnonzero(positions >= 0)
        kept_new.append(offset_new + found)
        kept_old.append(offset_old + positions[found])
    kept_new, kept_old = np.concatenate(kept_new), np.concatenate(kept_old)
    fresh = np.setdiff1d(np.arange(new.width), kept_new)
    components = model.no_components
    for name in _STATE:
        attribute = name.format(side)
        previous = getattr(model, attribute)
        state = np.zeros((new.width, *previous.shape[1:]), dtype=previous.dtype)
        state[kept_new] = previous[kept_old]
        if attribute.endswith("_embeddings"):
            state[fresh] = (model.random_state.rand(len(fresh), components) - 0.5) / components
        elif attribute.endswith("_gradients") and model.learning_schedule == "adagrad":
            state[fresh] = 1.0
        setattr(model, attribute, state)


def continue_fit(
    previous: HybridRecommender,
    data: TrainingData,
    epochs: int,
    recent_since: dt.datetime,
    recent_pairs: pd.DataFrame,
    num_threads: int = 1,
) -> HybridRecommender:
    """A warm start: `previous` (fitted on data up to an earlier moment) continued on `data` for
    `epochs` epochs over the customer-item pairs with an interaction since `recent_since`
    (`recent_pairs`: customer_id, item_id), so its cost follows the recent days, not the history.

    Customers, items and feature values are those of `data`, laid out as a fit from scratch would
    lay them out: known ones keep their learned state (adagrad accumulators too, so their steps stay
    as small as training had made them), new ones start fresh, gone ones are dropped."""
    if previous.trained_through > data.trained_through:
        raise ValueError(
            f"cannot continue a fit trained through {previous.trained_through} on data up to {data.trained_through}"
        )
    settings = previous.settings
    customers = pd.Index(sorted(data.weights[CUSTOMER_ID].unique()))
    users = FeatureEncoder.fit(customers, data.user_pairs, settings.user_feature_weight)
    items = FeatureEncoder.fit(data.item_ids, data.item_pairs, settings.item_feature_weight)
    model = copy.deepcopy(previous.model)
    _carry_over(model, "user", previous.users, users)
    _carry_over(model, "item", previous.items, items)
    recent = data.weights.merge(recent_pairs[[CUSTOMER_ID, ITEM_ID]].drop_duplicates(), on=[CUSTOMER_ID, ITEM_ID])
    interactions, sample_weight = _interaction_matrices(data, customers, settings, recent)
    if recent.empty:
        log.info("no interactions since %s: the warm start only re-lays the previous fit", recent_since)
    else:
        model.fit_partial(
            interactions,
            user_features=users.transform(customers, data.user_pairs),
            item_features=items.transform(data.item_ids, data.item_pairs),
            sample_weight=sample_weight,
            epochs=epochs,
            num_threads=num_threads,
        )
    return HybridRecommender(
        model,
        users,
        items,
        data.price_band_edges,
        settings,
        previous.epochs + epochs,
        data.trained_through,
        warm_started_from=previous.trained_through,
    )
