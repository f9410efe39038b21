"""What the gradient-boosted tree models share (ml.propensity, ml.uplift): how the feature store's
columns are encoded for scikit-learn's histogram gradient boosting, and the pipeline of both."""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder


def feature_encoder(categorical: list[str], numeric: list[str]) -> ColumnTransformer:
    """Categories as ordinals (the trees' native categorical splits; unknown and missing categories
    become NaN, which the trees treat as missing), numbers as they are, categorical columns first."""
    return ColumnTransformer(
        [
            (
                "categorical",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan),
                categorical,
            ),
            ("numeric", "passthrough", numeric),
        ]
    )


def boosted_trees(estimator, categorical: list[str], numeric: list[str], settings, seed: int) -> Pipeline:
    """The encoder and a histogram gradient boosting `estimator` (classifier or regressor class) with
    the model settings both models share (max_iter, learning_rate, max_leaf_nodes, min_samples_leaf,
    l2_regularization); categorical columns split natively."""
    boosting = estimator(
        max_iter=settings.max_iter,
        learning_rate=settings.learning_rate,
        max_leaf_nodes=settings.max_leaf_nodes,
        min_samples_leaf=settings.min_samples_leaf,
        l2_regularization=settings.l2_regularization,
        categorical_features=[True] * len(categorical) + [False] * len(numeric),
        random_state=seed,
    )
    return Pipeline([("encode", feature_encoder(categorical, numeric)), ("boost", boosting)])
