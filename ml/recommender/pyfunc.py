"""The registered `recommender` model: LightFM (or EASE) with its id maps and feature encoders as an MLflow pyfunc.

`predict` takes customer ids (and, for customers the model has not seen, their demographic columns)
and returns the top K items per customer, long format. The nightly scoring unwraps the same object
to score everyone in batches against the current catalog and purchase history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.constants import CUSTOMER_ID, ITEM_ID
from ml.mlops.tracking import BundledModel
from ml.recommender.ease import EaseRecommender
from ml.recommender.features import ENTITY, user_feature_pairs
from ml.recommender.model import HybridRecommender
from ml.recommender.ranking import MISSING


@dataclass
class RecommenderBundle:
    scoring: (
        HybridRecommender | EaseRecommender
    )  # refit on every interaction up to the end of ds: the model that scores
    evaluation: HybridRecommender | EaseRecommender  # fitted before the holdout: how the gate re-evaluates this version
    ds: str
    k: int
    user_columns: list[str]
    user_pairs: pd.DataFrame  # features of the customers known at training
    item_ids: pd.Index
    item_pairs: pd.DataFrame
    eligible: np.ndarray
    purchased: sp.csr_matrix  # customers (scoring.users.ids order) x items bought up to ds
    exclude_interacted: bool = False  # the nightly scoring also skips items viewed or carted (chosen on validation)

    def known_customer_ids(self) -> set[str]:
        """Every customer id the bundle holds: the two models' id maps and the stored features."""
        return {
            *map(str, self.scoring.users.ids),
            *map(str, self.evaluation.users.ids),
            *map(str, self.user_pairs[ENTITY].unique()),
        }


class RecommenderModel(BundledModel):
    bundle: RecommenderBundle

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        bundle = self.bundle
        customers = pd.Index(model_input[CUSTOMER_ID].astype(str).unique())
        known = bundle.user_pairs[bundle.user_pairs[ENTITY].isin(customers)]
        new = model_input[~model_input[CUSTOMER_ID].isin(bundle.user_pairs[ENTITY])]
        columns = [column for column in bundle.user_columns if column in new.columns]
        # New customers have no history in the model: demographic features only.
        text = pd.Series(dtype=object)
        empty_history = pd.DataFrame({CUSTOMER_ID: text, ITEM_ID: text, "weight": pd.Series(dtype=float)})
        new_pairs = user_feature_pairs(
            new[[CUSTOMER_ID, *columns]], columns, empty_history, pd.DataFrame({ITEM_ID: text, "category": text})
        )
        rows = bundle.scoring.users.ids.get_indexer(customers)
        # Customers the model has not seen have no purchases to exclude (zeroed rows).
        exclude = sp.diags((rows >= 0).astype(np.float32)) @ bundle.purchased[np.maximum(rows, 0)].astype(np.float32)
        top, scores = bundle.scoring.recommend(
            customers,
            pd.concat([known, new_pairs]),
            bundle.item_ids,
            bundle.item_pairs,
            bundle.k,
            exclude=sp.csr_matrix(exclude),
            eligible=bundle.eligible,
        )
        found = top != MISSING
        return pd.DataFrame(
            {
                CUSTOMER_ID: np.repeat(customers.to_numpy(), bundle.k)[found.ravel()],
                "rank": np.tile(np.arange(1, bundle.k + 1), len(customers))[found.ravel()],
                ITEM_ID: bundle.item_ids.to_numpy()[top[found]],
                "score": scores[found].astype(float),
            }
        )
