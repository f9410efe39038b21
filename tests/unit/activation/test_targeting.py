"""Decisions by expected incremental profit (ml.activation.targeting) and the readout of the
customers an uplift policy decided: what a marketer relies on when an uplift model serves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from ml.activation.columns import consent_channels, consent_column
from ml.activation.decisions import decide
from ml.activation.readout import readout
from ml.activation.settings import CONTROL
from ml.activation.targeting import EXPLORATION, RULES, UPLIFT, UpliftPolicy
from ml.assignment import arm_probability
from tests.unit.activation.test_decisions_and_exports import ACTIVATION, DS, SETTINGS, populations

EMPTY_HISTORY = pd.DataFrame(
    {"ds": pd.Series(dtype="datetime64[us]"), "audience": [], "customer_id": [], "channel": []}
)


def lapsed_buyers(n: int) -> pd.DataFrame:
    """Customers every win_back and welcome rule lets in (and no other audience), all reachable."""
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "frequency": 3,
            "recency_days": 60,
            "tenure_days": 3,
            "country": "DE",
            "language": "de",
            "latest_nps_category": "promoter",
            "score": None,
            "is_erased": False,
            **{consent_column(channel): True for channel in consent_channels()},
        }
    )


def policy(population: pd.DataFrame, values: dict[str, np.ndarray], exploration: float = 10) -> UpliftPolicy:
    """win_back's arms with the given expected profits per customer."""
    frames = [
        pd.DataFrame(
            {"customer_id": population["customer_id"], "campaign_id": "win_back", "arm": arm, "expected_profit": v}
        )
        for arm, v in values.items()
    ]
    return UpliftPolicy(pd.concat(frames, ignore_index=True), exploration, "test-salt")


def test_each_customer_gets_the_most_profitable_arm_and_the_unprofitable_get_no_message():
    population = lapsed_buyers(2_000)
    rng = np.random.default_rng(1)
    values = {"a": rng.normal(0.5, 1, 2_000), "b": rng.normal(0.5, 1, 2_000), "c": rng.normal(-0.5, 1, 2_000)}
    uplift = policy(population, values)
    result = decide(population, EMPTY_HISTORY, ACTIVATION, DS, uplift=uplift)
    won = result.assignments[result.assignments["audience"] == "win_back"].set_index("customer_id")
    exploring = pd.Series(uplift.exploring(population["customer_id"]), index=population["customer_id"])
    best = pd.DataFrame(values, index=population["customer_id"])
    by_model = won[won["decided_by"] == UPLIFT]
    # the arm with the highest expected profit, treated or held out (policy_arm), and its value recorded
    assert (by_model["policy_arm"] == best.loc[by_model.index].idxmax(axis=1)).all()
    assert np.allclose(by_model["expected_value"], best.loc[by_model.index].max(axis=1))
    treated = by_model[by_model["experiment_group"] != CONTROL]
    assert (treated["experiment_group"] == treated["policy_arm"]).all()
    # nobody whose best arm loses money, unless exploring (the rules, random arms)
    unprofitable = best.index[(best.max(axis=1) <= 0) & ~exploring]
    assert not set(unprofitable) & set(won.index)
    funnel = result.funnel.set_index(["audience", "step"])["customers"]
    assert funnel[("win_back", "no_expected_profit")] == len(unprofitable)
    # the exploration share keeps the rules, with random arms over every arm
    explored = won[won["decided_by"] == EXPLORATION]
    assert set(explored.index) <= set(exploring[exploring].index)
    assert explored["policy_arm"].isna().all() and set(explored["experiment_group"]) == {CONTROL, "a", "b", "c"}
    # the holdout stays a random share of the uplift-decided customers, in a version of their own
    assert abs((by_model["experiment_group"] == CONTROL).mean() - 0.30) < 0.04
    assert by_model["experiment_version"].nunique() == 1
    assert set(by_model["experiment_version"]).isdisjoint(set(explored["experiment_version"]))
    # every decision says what it beat
    assert by_model["runner_up"].str.startswith("win_back/").all()


def test_where_every_audience_has_a_value_the_highest_expected_profit_wins_over_priority():
    population = lapsed_buyers(300)
    frames = [
        pd.DataFrame({"customer_id": population["customer_id"], "campaign_id": name, "arm": arm, "expected_profit": v})
        for name, arm, v in (("win_back", "a", 1.0), ("welcome", "treatment", 2.0))
    ]
    uplift = UpliftPolicy(pd.concat(frames, ignore_index=True), 10, "test-salt")
    result = decide(population, EMPTY_HISTORY, ACTIVATION, DS, uplift=uplift)
    by_model = result.assignments[result.assignments["decided_by"] == UPLIFT]
    # welcome (priority 3) earns more than win_back (priority 2): it wins the uplift-decided customers
    assert set(by_model["audience"]) == {"welcome"}
    assert by_model["runner_up"].str.startswith("win_back/a 1.00").all()
    # without values for welcome, priority decides: win_back
    rules_only = policy(population, {"a": np.full(300, 1.0)})
    again = decide(population, EMPTY_HISTORY, ACTIVATION, DS, uplift=rules_only).assignments
    assert set(again["audience"]) == {"win_back"}


@SETTINGS
@given(populations(), st.floats(-2, 2), st.floats(1, 50))
def test_no_policy_and_a_policy_for_nobody_decide_alike(generated, value, exploration):
    """A policy's scores change only the audiences they name; without them the rules decide as before."""
    population, history = generated
    before = decide(population, history, ACTIVATION, DS)
    empty = UpliftPolicy(
        pd.DataFrame(columns=["customer_id", "campaign_id", "arm", "expected_profit"]), exploration, "s"
    )
    after = decide(population, history, ACTIVATION, DS, uplift=empty)
    columns = ["customer_id", "audience", "experiment_group", "experiment_version"]
    pd.testing.assert_frame_equal(before.assignments[columns], after.assignments[columns])
    assert set(after.assignments["decided_by"]) <= {RULES}


def test_the_uplift_version_reads_each_arm_against_the_holdout_it_was_chosen_from():
    """Arms go to different customers by design (here: arm a to customers who buy at 40% anyway, arm b
    to customers who buy at 5%), and no arm has any effect. A comparison of arm a with the whole
    holdout would find a large false effect; the readout compares it with the holdout of the
    customers a was chosen for, and finds nothing."""
    rng = np.random.default_rng(3)
    n = 20_000
    policy_arm = np.where(rng.random(n) < 0.5, "a", "b")
    base_rate = np.where(policy_arm == "a", 0.40, 0.05)
    group = np.where(rng.random(n) < 0.3, CONTROL, policy_arm)
    converted = rng.random(n) < base_rate
    version = ACTIVATION.audiences["win_back"].experiment_version(ACTIVATION.salt, None, True)
    exposures = pd.DataFrame(
        {
            "audience": "win_back",
            "experiment_version": version,
            "customer_id": [f"C{i}" for i in range(n)],
            "experiment_group": group,
            "policy_arm": policy_arm,
            "assigned_on": pd.Timestamp(DS) - pd.to_timedelta(30 + rng.integers(0, 10, n), unit="D"),
            "converted": converted,
            "revenue": converted * 50.0,
        }
    )
    results = readout(exposures, ACTIVATION, DS)
    assert set(zip(results["arm"], results["baseline"], strict=True)) == {("a", CONTROL), ("b", CONTROL)}
    assert not results["is_significant"].any(), results[["arm", "effect", "ci_lower", "ci_upper"]]
    naive = converted[group == "a"].mean() - converted[group == CONTROL].mean()
    assert naive > 0.1  # what pooling the holdout would have reported


def test_an_uplift_versions_logged_probability_is_the_holdouts_or_the_rest_for_the_chosen_arm():
    definition = json.dumps(ACTIVATION.audiences["win_back"].experiment_definition(ACTIVATION.salt, None, True))
    assert arm_probability(definition, CONTROL) == 0.30
    assert abs(arm_probability(definition, "b") - 0.70) < 1e-12
    random = json.dumps(ACTIVATION.audiences["win_back"].experiment_definition(ACTIVATION.salt))
    assert abs(arm_probability(random, "b") - 0.70 * 2 / 4) < 1e-12
