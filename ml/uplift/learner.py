"""The DR-learner of a message's effect per customer, from randomized sends with known probabilities.

Kennedy (2023), "Towards optimal doubly robust estimation of heterogeneous causal effects", EJS 17:
cross-fitted outcome models mu_0(x), mu_1(x) (control, treated) give each send the doubly robust
pseudo-outcome

    phi = mu_1(x) - mu_0(x) + t (y - mu_1(x)) / e - (1 - t) (y - mu_0(x)) / (1 - e)

whose conditional mean is the effect tau(x) = E[Y(1) - Y(0) | x] whenever either the outcome models
or the assignment probability e is right; with randomized sends e is known exactly (logged), so it is
unbiased however rough the outcome models are, and they only reduce its variance. A regression of phi
on x is the effect model. The same estimator as econml's DRLearner and causalml's BaseDRLearner
(their regression stages are gradient boosting here too); written on scikit-learn because the
probabilities are known (no propensity model to fit) and both libraries pin older numpy and scikit-learn
than this platform runs (docs/uplift.md).

The effect's standard error is the spread of `spread_fits` fits of the effect model on random halves
of the sends, divided by sqrt(2) (a half sample's estimate varies about twice as much as the full
sample's: half-sampling, Efron 1982 ch. 8). It says how firmly the model places a customer, not a
confidence interval of one customer's effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from ml.constants import SEED
from ml.mlops.trees import boosted_trees
from ml.uplift.settings import LearnerSettings

OPENMP_THREADS = 1  # as the propensity model: one thread per fit, reproducible, never oversubscribed


@dataclass(frozen=True)
class Features:
    categorical: list[str]
    numeric: list[str]

    def frame(self, rows: pd.DataFrame) -> pd.DataFrame:
        frame = rows.reindex(columns=self.categorical + self.numeric)
        frame[self.numeric] = frame[self.numeric].astype(float)
        frame[self.categorical] = frame[self.categorical].astype(object)
        return frame

    def learnable(self, rows: pd.DataFrame) -> Features:
        """Only columns with two distinct values (an all-missing column breaks the trees' binning)."""
        keep = [column for column in self.categorical + self.numeric if rows[column].nunique(dropna=True) >= 2]
        return Features([c for c in self.categorical if c in keep], [c for c in self.numeric if c in keep])


def regressor(features: Features, settings: LearnerSettings, seed: int = SEED) -> Pipeline:
    """Gradient-boosted trees on the feature store's columns (categories ordinal-encoded, unknown as missing)."""
    return boosted_trees(HistGradientBoostingRegressor, features.categorical, features.numeric, settings, seed)


def _fit(features: Features, settings: LearnerSettings, x: pd.DataFrame, y: np.ndarray, seed: int = SEED):
    model = regressor(features, settings, seed)
    with threadpool_limits(OPENMP_THREADS, user_api="openmp"):
        model.fit(x, y)
    return model


def _predict(model, x: pd.DataFrame) -> np.ndarray:
    return _predict_all([model], x)[0]


def _predict_all(models: list[Pipeline], x: pd.DataFrame) -> list[np.ndarray]:
    """Each pipeline's prediction on x, encoding x once per distinct fitted encoder rather than once
    per model: the models of one effect are fitted on subsets of the same sends, so their encoders
    nearly always hold the same categories, and encoding was half the cost of predicting (measured at
    1M customers). The same numbers as each pipeline's own predict."""
    encoded: dict[tuple, np.ndarray] = {}
    predictions = []
    with threadpool_limits(OPENMP_THREADS, user_api="openmp"):
        for model in models:
            encoder, boosting = model[:-1], model[-1]
            key = _categories(model)
            if key not in encoded:
                encoded[key] = encoder.transform(x)
            predictions.append(boosting.predict(encoded[key]))
    return predictions


def _categories(model: Pipeline) -> tuple:
    """What the pipeline's encoder learned: the categories of each categorical column, in order."""
    ordinal = model[0].named_transformers_.get("categorical")
    return tuple(tuple(column) for column in getattr(ordinal, "categories_", ()))


def pseudo_outcomes(
    y: np.ndarray, treated: np.ndarray, e: np.ndarray, mu_0: np.ndarray, mu_1: np.ndarray
) -> np.ndarray:
    """Kennedy's doubly robust pseudo-outcome of each send (see the module docstring)."""
    t = treated.astype(float)
    return mu_1 - mu_0 + t * (y - mu_1) / e - (1 - t) * (y - mu_0) / (1 - e)


@dataclass
class EffectModel:
    """One outcome's effect model of one campaign arm against its control."""

    features: Features
    effect_fits: list  # the half-sample fits of tau(x)
    treated_outcome: object  # mu_1(x) on every send: what a treated customer is expected to do
    control_outcome: object  # mu_0(x)

    def predict(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        x = self.features.frame(rows)
        *effects, treated, control = _predict_all([*self.effect_fits, self.treated_outcome, self.control_outcome], x)
        fits = np.vstack(effects)
        return {
            "effect": fits.mean(axis=0),
            "effect_se": fits.std(axis=0, ddof=1) / np.sqrt(2),
            "treated": treated,
            "control": control,
        }


def fit_effect(
    rows: pd.DataFrame,
    y: np.ndarray,
    treated: np.ndarray,
    e: np.ndarray,
    features: Features,
    settings: LearnerSettings,
    folds: int,
    spread_fits: int,
) -> EffectModel:
    """Cross-fit the outcome models, form the pseudo-outcomes, fit the effect model on halves."""
    x = features.frame(rows)
    rng = np.random.default_rng(SEED)
    fold = rng.integers(0, folds, len(rows))
    mu_0, mu_1 = np.zeros(len(rows)), np.zeros(len(rows))
    for k in range(folds):
        learn, apply = fold != k, fold == k
        mu_0[apply] = _predict(_fit(features, settings, x[learn & ~treated], y[learn & ~treated]), x[apply])
        mu_1[apply] = _predict(_fit(features, settings, x[learn & treated], y[learn & treated]), x[apply])
    phi = pseudo_outcomes(y, treated, e, mu_0, mu_1)
    halves = [rng.random(len(rows)) < 0.5 for _ in range(spread_fits)]
    effect_fits = [_fit(features, settings, x[half], phi[half], SEED + i) for i, half in enumerate(halves)]
    return EffectModel(
        features,
        effect_fits,
        _fit(features, settings, x[treated], y[treated]),
        _fit(features, settings, x[~treated], y[~treated]),
    )
