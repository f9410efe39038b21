"""The propensity model's permutation importances: computed on encoded rows for speed, they must
describe the calibrated ensemble the model serves, and find the feature that carries the signal."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance

from ml.mlops.trees import boosted_trees
from ml.propensity.model import PropensityModel, encoded_members, ensemble_probability, permutation_auc_drops
from ml.propensity.settings import PropensityConfig


def planted_model(rows: int = 1_500, seed: int = 3) -> tuple[PropensityModel, pd.DataFrame, np.ndarray]:
    """Buyers are decided by `recency_days` and a little by `device_type`; `noise` says nothing."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "device_type": rng.choice(["desktop", "ios", "android", None], rows).astype(object),
            "recency_days": rng.exponential(60, rows),
            "noise": rng.normal(size=rows),
        }
    )
    logit = 1.5 - frame["recency_days"] / 30 + 0.5 * (frame["device_type"] == "ios")
    labels = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    categorical, numeric = ["device_type"], ["noise", "recency_days"]
    pipeline = boosted_trees(HistGradientBoostingClassifier, categorical, numeric, PropensityConfig().model, seed)
    classifier = CalibratedClassifierCV(pipeline, method="isotonic", cv=3).fit(frame[categorical + numeric], labels)
    return PropensityModel(classifier, categorical, numeric, dt.datetime(2026, 1, 1), rows), frame, labels


def test_the_importances_rank_the_planted_feature_first_and_agree_with_scikit_learns():
    model, frame, labels = planted_model()
    ours = permutation_auc_drops(model, frame, labels, repeats=3, seed=7).set_index("feature")
    assert ours["auc_drop_mean"].idxmax() == "recency_days"
    assert ours.loc["recency_days", "auc_drop_mean"] > 0.2
    assert abs(ours.loc["noise", "auc_drop_mean"]) < 0.02
    theirs = permutation_importance(
        model.classifier,
        frame[model.categorical + model.numeric],
        labels,
        scoring="roc_auc",
        n_repeats=3,
        random_state=7,
    )
    # Different shuffles, the same estimand: each feature's mean drop within a few hundredths.
    assert np.allclose(ours["auc_drop_mean"].to_numpy(), theirs.importances_mean, atol=0.03)


def test_the_encoded_rows_give_the_served_models_probabilities():
    model, frame, _ = planted_model(rows=600)
    members = encoded_members(model, frame)
    np.testing.assert_allclose(ensemble_probability(members, [matrix for _, matrix in members]), model.predict(frame))
