"""The champion gate on evidence: a challenger replaces the champion only when it is significantly
better customer by customer; a champion keeps serving until it is significantly worse than the
baseline; an unreadable artifact or a version a crash left ungated never serves; aliases keep their
history; a training that equals a registered version reuses it."""

from __future__ import annotations

import datetime as dt

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from scipy import stats

from ml.mlops.lifecycle import FINGERPRINT, readable_serving, version_trained_as
from ml.mlops.registry import (
    ARTIFACT_ERROR,
    CHAMPION,
    GATE_SERVES,
    ChampionCheck,
    PerCustomer,
    gate,
    mark_interrupted,
    paired_test,
    serving_for,
)
from ml.mlops.settings import ChampionGateConfig
from ml.propensity.model import log_loss_per_row
from ml.recommender.metrics import ndcg_at_k, ndcg_per_user
from tests.unit.recommender.test_training import registry  # noqa: F401  (the fixture)

DS = dt.date(2026, 10, 31)
CONFIG = ChampionGateConfig(metric="ndcg_at_10", margin=0.002)  # alpha 0.025: a 95% interval above 0


def noisy(rng, mean: float, n: int = 1_000) -> np.ndarray:
    """Per-customer scores around `mean` (the gate needs no bounds on them)."""
    return rng.normal(mean, 0.25, n)


def test_the_paired_test_matches_scipy_and_its_interval_agrees_with_its_decision():
    rng = np.random.default_rng(0)
    better, worse = noisy(rng, 0.21), noisy(rng, 0.20)
    test = paired_test(better, worse)
    assert test.p_value == pytest.approx(stats.ttest_rel(better, worse, alternative="greater").pvalue)
    assert test.low < test.mean < test.high and test.customers == 1_000
    low, high = stats.ttest_rel(better, worse).confidence_interval(0.95)
    assert (test.low, test.high) == (pytest.approx(low), pytest.approx(high))  # 95% at alpha 0.025
    for seed in range(30):  # the interval is above 0 exactly when the test rejects
        rng = np.random.default_rng(seed)
        drawn = paired_test(noisy(rng, 0.2) + 0.02, noisy(rng, 0.2))
        assert drawn.ahead(0.025) == (drawn.low > 0)
    assert paired_test(better, better).p_value == 1.0  # no difference at all is no evidence


def test_the_paired_test_holds_its_error_rate_under_no_difference():
    """Under the null (two equally good models), 'significantly better' comes up in about alpha of cases."""
    rng = np.random.default_rng(1)
    shared = noisy(rng, 0.2, 400)
    calls = sum(
        paired_test(shared + rng.normal(0, 0.05, 400), shared + rng.normal(0, 0.05, 400)).ahead(0.025)
        for _ in range(2_000)
    )
    assert 32 <= calls <= 68  # 2.5% of 2,000 is 50, within three standard errors


def test_per_user_ndcg_averages_to_ndcg_and_log_loss_to_sklearns():
    from scipy.sparse import csr_matrix
    from sklearn.metrics import log_loss

    truth = csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]))
    recommended = np.array([[2, 1], [0, 3], [1, 2]])
    assert ndcg_per_user(truth, recommended, 2).mean() == pytest.approx(ndcg_at_k(truth, recommended, 2))
    assert len(ndcg_per_user(truth, recommended, 2)) == 2  # only customers with something to find
    labels, probabilities = np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.4, 0.0])
    assert log_loss_per_row(labels, probabilities).mean() == pytest.approx(log_loss(labels, probabilities.clip(1e-6)))


def test_a_challenger_ahead_by_noise_does_not_replace_the_champion(registry):  # noqa: F811
    client, register = registry
    rng = np.random.default_rng(2)
    popularity = noisy(rng, 0.10)
    champion_scores = noisy(rng, 0.20)
    # Ahead by 0.003 on average (past the margin) but customer by customer no better than noise.
    challenger_scores = champion_scores + rng.normal(0.003, 0.2, len(champion_scores))
    evaluate = lambda champion: ChampionCheck(float(champion_scores.mean()), per_customer=champion_scores)  # noqa: E731
    first = gate(client, "gated", register(), 0.2, ("popularity", 0.1), evaluate, CONFIG)
    assert first.promoted
    per_customer = PerCustomer("NDCG@10", challenger_scores, popularity)
    second = gate(
        client,
        "gated",
        register(),
        float(challenger_scores.mean()),
        ("popularity", 0.1),
        evaluate,
        CONFIG,
        per_customer,
    )
    assert not second.promoted and second.serving_version == "1"
    assert "not significantly better than champion v1" in second.reason
    assert second.versus_champion.p_value >= 0.025 and second.versus_champion.low < 0 < second.versus_champion.high
    metrics = second.metrics()
    assert metrics["gate_vs_champion_ci_low"] < metrics["gate_vs_champion_delta"] < metrics["gate_vs_champion_ci_high"]
    # Clearly better, customer by customer: it replaces the champion; the alias history is on both versions.
    clearly = champion_scores + 0.05
    third = gate(
        client,
        "gated",
        register(),
        float(clearly.mean()),
        ("popularity", 0.1),
        evaluate,
        CONFIG,
        PerCustomer("NDCG@10", clearly, popularity),
    )
    assert third.promoted and str(client.get_model_version_by_alias("gated", CHAMPION).version) == "3"
    assert client.get_model_version("gated", "1").tags["alias_champion_until"] == "2026-10-31"
    assert client.get_model_version("gated", "3").tags["alias_champion_since"] == "2026-10-31"


def test_a_champion_serves_until_significantly_worse_than_the_baseline(registry):  # noqa: F811
    client, register = registry
    rng = np.random.default_rng(3)
    champion_scores = noisy(rng, 0.20)
    evaluate = lambda champion: ChampionCheck(float(champion_scores.mean()), per_customer=champion_scores)  # noqa: E731
    gate(client, "gated", register(), 0.2, ("popularity", 0.1), evaluate, CONFIG)
    # The baseline is a hair ahead tonight, within noise: the champion keeps serving.
    level = champion_scores + rng.normal(0.001, 0.2, len(champion_scores))
    weak = champion_scores - 0.01
    even = gate(
        client,
        "gated",
        register(),
        float(weak.mean()),
        ("popularity", float(level.mean())),
        evaluate,
        CONFIG,
        PerCustomer("NDCG@10", weak, level),
    )
    assert not even.promoted and even.serves == "model" and even.serving_version == "1"
    # Now clearly ahead of the champion: the champion is demoted and the baseline serves.
    ahead = champion_scores + 0.05
    behind = gate(
        client,
        "gated",
        register(),
        float(weak.mean()),
        ("popularity", float(ahead.mean())),
        evaluate,
        CONFIG,
        PerCustomer("NDCG@10", weak, ahead),
    )
    assert behind.serves == "baseline" and "significantly worse than the popularity baseline" in behind.reason
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("gated", CHAMPION)


def break_artifact(client, version, how: str) -> None:
    """Truncate or delete the version's pickled bundle (what a damaged artifact store looks like)."""
    from pathlib import Path
    from urllib.parse import urlparse

    root = Path(urlparse(client.get_model_version_download_uri("gated", version)).path)
    files = [path for path in root.rglob("*") if path.is_file() and path.name in ("python_model.pkl", "MLmodel")]
    assert files
    for path in files:
        if how == "truncated":
            path.write_bytes(path.read_bytes()[:10])
        else:
            path.unlink()


@pytest.mark.parametrize("how", ["truncated", "deleted"])
def test_an_unreadable_champion_is_demoted_and_never_serves(registry, how):  # noqa: F811
    client, register = registry
    evaluate = lambda champion: ChampionCheck(0.2)  # noqa: E731
    gate(client, "gated", register(), 0.2, ("popularity", 0.1), evaluate, CONFIG)
    break_artifact(client, "1", how)
    load = lambda uri: mlflow.pyfunc.load_model(uri)  # noqa: E731
    serving, alerts = readable_serving("gated", DS, load)
    assert serving.version is None and not serving.serves_model
    assert (
        len(alerts) == 1 and "gated v1's artifact cannot be loaded" in alerts[0] and "--stage train_gated" in alerts[0]
    )
    assert ARTIFACT_ERROR in client.get_model_version("gated", "1").tags
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("gated", CHAMPION)
    # The next training finds no champion to beat: a version that beats the baseline serves again.
    again = gate(client, "gated", register(), 0.2, ("popularity", 0.1), evaluate, CONFIG)
    assert again.promoted and str(serving_for(client, "gated", DS).version.version) == "2"


def test_a_champion_whose_artifact_fails_in_the_gate_is_replaced_not_fatal(registry):  # noqa: F811
    client, register = registry
    gate(client, "gated", register(), 0.2, ("popularity", 0.1), lambda c: ChampionCheck(0.2), CONFIG)
    unreadable = lambda champion: ChampionCheck(None, "UnpicklingError: pickle data was truncated", unreadable=True)  # noqa: E731
    second = gate(client, "gated", register(), 0.15, ("popularity", 0.1), unreadable, CONFIG)
    assert second.promoted and "champion v1 demoted, its artifact cannot be loaded" in second.reason
    assert "UnpicklingError" in client.get_model_version("gated", "1").tags[ARTIFACT_ERROR]


def test_a_version_without_a_gate_decision_never_serves(registry):  # noqa: F811
    client, register = registry
    gate(client, "gated", register("2026-10-30"), 0.2, ("popularity", 0.1), lambda c: ChampionCheck(0.2), CONFIG)
    crashed = register()  # registered, then the run was killed before the gate
    assert GATE_SERVES not in crashed.tags
    assert str(serving_for(client, "gated", DS).version.version) == "1"
    assert mark_interrupted(client, "gated") == ["2"]
    assert "gate_interrupted" in client.get_model_version("gated", "2").tags


def test_a_training_equal_to_a_registered_one_reuses_it(registry):  # noqa: F811
    client, register = registry
    gate(client, "gated", register(), 0.2, ("popularity", 0.1), lambda c: ChampionCheck(0.2), CONFIG)
    client.set_model_version_tag("gated", "1", FINGERPRINT, "abc")
    assert str(version_trained_as("gated", "abc", DS).version) == "1"
    assert version_trained_as("gated", "another", DS) is None
    # A version trained for a later ds never serves an earlier one: a backfill behind it trains its own.
    assert version_trained_as("gated", "abc", DS - dt.timedelta(days=1)) is None
