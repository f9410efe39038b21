"""What the gradient-boosted tree models share (ml.propensity, ml.uplift): how the feature store's
columns are encoded for scikit-learn's histogram gradient boosting."""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
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
