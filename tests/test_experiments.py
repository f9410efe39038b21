"""Experiment readouts: the statistics against known values, planted lifts found, A/A tests found
significant at about the configured rate, Holm across arms, and the feedback loop's pause."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ml.activation.columns import consent_channels, consent_column
from ml.activation.decisions import decide
from ml.activation.readout import compare, paused_audiences, readout
from ml.activation.settings import CONTROL
from tests.test_activation_properties import ACTIVATION

DS = dt.date(2026, 10, 31)


def test_the_statistics_match_known_values():
    result = compare(500, 40, 500, 60, alpha=0.05)
    assert result["control_rate"] == pytest.approx(0.08) and result["arm_rate"] == pytest.approx(0.12)
    assert result["absolute_lift"] == pytest.approx(0.04) and result["relative_lift"] == pytest.approx(0.5)
    assert result["p_value"] == pytest.approx(0.03501, abs=1e-5)  # pooled two-proportion z-test, z = 2.108
    assert (result["ci_lower"], result["ci_upper"]) == pytest.approx((0.002895, 0.077105), abs=1e-6)  # Wald
    # MDE at 80% power around the pooled rate p = 0.10: (z_0.975 + z_0.8) * sqrt(p (1 - p) (1/n_t + 1/n_c))
    assert result["mde_at_80_power"] == pytest.approx(2.80158 * np.sqrt(0.10 * 0.90 * (2 / 500)), rel=1e-4)
    assert compare(14, 0, 40, 3, alpha=0.05)["mde_at_80_power"] > 0  # no control conversion: still an MDE
    assert compare(0, 0, 10, 1, alpha=0.05)["p_value"] is None  # nothing to compare with
    assert compare(50, 0, 50, 0, alpha=0.05)["p_value"] == 1.0  # no variance: no evidence


def simulated(audience: str, rates: dict[str, float], customers: int, rng) -> pd.DataFrame:
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "audience": audience,
                    "customer_id": [f"{group}{n}" for n in range(customers)],
                    "experiment_group": group,
                    "assigned_on": DS - dt.timedelta(days=30),
                    "converted": rng.random(customers) < rate,
                }
            )
            for group, rate in rates.items()
        ]
    )


def test_a_handful_of_customers_is_never_significant():
    rng = np.random.default_rng(1)
    exposures = pd.concat(
        [
            simulated("care", {CONTROL: 1.0}, 6, rng).assign(converted=[True, True, False, False, False, False]),
            simulated("care", {"treatment": 0.0}, 20, rng),
        ]
    )
    row = readout(exposures, ACTIVATION, DS).set_index("audience").loc["care"]
    assert row["p_value"] < 0.05 and not row["is_significant"]  # the z-test alone would say so
    assert row["conclusion"].startswith("too few outcomes")
    assert paused_audiences(readout(exposures, ACTIVATION, DS), ACTIVATION) == {}


def test_a_planted_lift_is_found_and_its_interval_covers_it():
    rng = np.random.default_rng(11)
    exposures = simulated("care", {CONTROL: 0.10, "treatment": 0.14}, 4000, rng)
    row = readout(exposures, ACTIVATION, DS).set_index("audience").loc["care"]
    assert row["is_significant"] and row["conclusion"] == "reject the null hypothesis: positive lift"
    assert row["ci_lower"] < 0.04 < row["ci_upper"] and row["p_value_holm"] == row["p_value"]
    assert row["mde_at_80_power"] < 0.04  # the test was powered for this effect


def test_aa_tests_are_significant_at_about_the_significance_level():
    rng = np.random.default_rng(5)
    alpha = ACTIVATION.audiences["care"].significance_level
    runs = 1000
    conversions = rng.binomial(1500, 0.10, size=(runs, 2))
    significant = [compare(1500, int(c), 1500, int(t), alpha)["p_value"] < alpha for c, t in conversions]
    rate = np.mean(significant)
    assert abs(rate - alpha) < 4 * np.sqrt(alpha * (1 - alpha) / runs), rate  # 0.05 +- 0.028
    # And through the readout, the A/A audience's conclusion says so.
    exposures = simulated("care", {CONTROL: 0.10, "treatment": 0.10}, 1500, rng)
    row = readout(exposures, ACTIVATION, DS).set_index("audience").loc["care"]
    assert row["conclusion"] in {
        "cannot reject the null hypothesis",
        "reject the null hypothesis: positive lift",
        "reject the null hypothesis: negative lift",
    }


def test_holm_corrects_across_the_arms_of_one_audience():
    rng = np.random.default_rng(2)
    exposures = simulated("win_back", {CONTROL: 0.10, "a": 0.10, "b": 0.16, "c": 0.11}, 3000, rng)
    results = readout(exposures, ACTIVATION, DS).query("audience == 'win_back'").set_index("arm")
    assert (results["p_value_holm"] >= results["p_value"]).all()
    assert results.loc["b", "p_value_holm"] == pytest.approx(3 * results.loc["b", "p_value"])  # smallest: x3
    assert results.loc["b", "is_significant"] and not results.loc["a", "is_significant"]


def test_a_significant_negative_lift_pauses_the_audience_and_the_switch_turns_it_off():
    rng = np.random.default_rng(8)
    exposures = simulated("welcome", {CONTROL: 0.30, "treatment": 0.20}, 3000, rng)
    results = readout(exposures, ACTIVATION, DS)
    paused = paused_audiences(results, ACTIVATION)
    assert list(paused) == ["welcome"] and "against control" in paused["welcome"]
    switched_off = ACTIVATION.model_copy(update={"pause_on_significant_negative_lift": False})
    assert paused_audiences(results, switched_off) == {}

    population = pd.DataFrame(
        {
            "customer_id": [f"C{n}" for n in range(20)],
            "frequency": 0,
            "recency_days": None,
            "tenure_days": 3,
            "country": "DE",
            "language": "de",
            "latest_nps_category": None,
            "score": 0.5,
            "is_erased": False,
        }
    )
    for channel in consent_channels():
        population[consent_column(channel)] = True
    history = pd.DataFrame({"ds": pd.Series(dtype="datetime64[us]"), "audience": [], "customer_id": [], "channel": []})
    result = decide(population, history, ACTIVATION, DS, paused=frozenset(paused))
    assert "welcome" not in set(result.assignments["audience"])
    funnel = result.funnel[result.funnel["audience"] == "welcome"].set_index("step")["customers"]
    assert funnel["paused"] == funnel["qualified"] > 0 and funnel["decided"] == 0
