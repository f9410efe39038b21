"""The DR-learner and the Qini on data with a planted, known effect per customer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.uplift.evaluation import compare_rankings, qini, transformed_outcome
from ml.uplift.learner import Features, _fit, _predict_all, fit_effect, pseudo_outcomes
from ml.uplift.settings import LearnerSettings

FEATURES = Features(categorical=["segment"], numeric=["recency_days", "noise"])


def planted(n: int, seed: int, treated_share: float = 0.5) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Persuadables (lapsing: recency 30-120 days) gain 0.25; sleeping dogs (segment 'detractor')
    lose 0.15; sure things (recent buyers) buy at 0.6 either way; the rest at 0.1 either way."""
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame(
        {
            "segment": rng.choice(["promoter", "passive", "detractor"], n, p=[0.4, 0.45, 0.15]),
            "recency_days": rng.uniform(0, 200, n),
            "noise": rng.normal(size=n),
        }
    )
    base = np.where(rows["recency_days"] < 30, 0.6, 0.1)
    effect = np.where(rows["segment"] == "detractor", -0.15, np.where(rows["recency_days"].between(30, 120), 0.25, 0))
    treated = rng.random(n) < treated_share
    y = (rng.random(n) < np.clip(base + treated * effect, 0, 1)).astype(float)
    return rows, treated, y, effect


@pytest.fixture(scope="module")
def learned():
    rows, treated, y, _ = planted(8_000, 1, treated_share=0.7)
    e = np.full(len(rows), 0.7)
    model = fit_effect(rows, y, treated, e, FEATURES, LearnerSettings(min_samples_leaf=50), folds=2, spread_fits=5)
    test_rows, test_treated, test_y, test_effect = planted(6_000, 2, treated_share=0.7)
    return model, test_rows, test_treated, test_y, test_effect


def test_the_learner_recovers_the_planted_effects(learned):
    model, rows, _, _, effect = learned
    predicted = model.predict(rows)
    for truth in (0.25, -0.15, 0.0):
        mean = predicted["effect"][effect == truth].mean()
        assert abs(mean - truth) < 0.06, (truth, mean)
    assert np.corrcoef(predicted["effect"], effect)[0, 1] > 0.8
    assert (predicted["effect_se"] > 0).all() and predicted["effect_se"].mean() < 0.1


def test_the_learner_ranks_above_random_and_above_the_likeliest_buyers(learned):
    model, rows, treated, y, effect = learned
    predicted = model.predict(rows)
    psi = transformed_outcome(y, treated, np.full(len(rows), 0.7))
    comparison = compare_rankings(predicted["effect"], predicted["treated"], psi, 200, 0.95)
    assert comparison.model.lower > 0
    assert comparison.difference.lower > 0  # propensity ranking favours the sure things
    oracle = qini(effect, psi)
    assert comparison.model.value > 0.7 * oracle


def test_predicting_with_a_shared_encoding_gives_each_pipelines_own_predictions(learned):
    """The effect's models encode the rows once between them; a model whose encoder learned other
    categories (fitted where a category never occurs) gets its own encoding."""
    model, rows, _, y, _ = learned
    without_detractors = (rows["segment"] != "detractor").to_numpy()
    other = _fit(FEATURES, LearnerSettings(min_samples_leaf=50), rows[without_detractors], y[without_detractors])
    pipelines = [*model.effect_fits, model.treated_outcome, other, model.control_outcome]
    x = FEATURES.frame(rows)
    for shared, own in zip(_predict_all(pipelines, x), [p.predict(x) for p in pipelines], strict=True):
        np.testing.assert_array_equal(shared, own)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 0.9))
def test_the_pseudo_outcome_is_unbiased_whatever_the_outcome_models(seed, share):
    """With known assignment probabilities the DR pseudo-outcome's mean is the true effect even when
    the outcome models are wrong (here: arbitrary constants)."""
    rng = np.random.default_rng(seed)
    n = 200_000
    treated = rng.random(n) < share
    y = np.where(treated, rng.random(n) < 0.3, rng.random(n) < 0.2).astype(float)
    wrong_0, wrong_1 = np.full(n, rng.uniform(0, 1)), np.full(n, rng.uniform(0, 1))
    phi = pseudo_outcomes(y, treated, np.full(n, share), wrong_0, wrong_1)
    assert abs(phi.mean() - 0.1) < 5 * phi.std() / np.sqrt(n)


def test_qini_is_zero_for_random_order_positive_for_the_truth_negative_reversed():
    rows, treated, y, effect = planted(20_000, 3)
    psi = transformed_outcome(y, treated, np.full(len(rows), 0.5))
    assert qini(effect, psi) > 0.01
    assert qini(-effect, psi) < -0.01
    random_order = np.random.default_rng(4).random(len(rows))
    assert abs(qini(random_order, psi)) < 0.005
