"""Experiment readouts: always-valid under nightly looks (simulated A/A tests the fixed-horizon readout
fails), planted effects found with intervals that cover them, CUPED narrowing intervals without losing
coverage, versions never pooled, arms compared with each other, money and ROI, the global holdout,
and the feedback loop with its audit trail."""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.activation.columns import consent_channels, consent_column
from ml.activation.decisions import decide, in_global_holdout
from ml.activation.money import warn_missing_rates
from ml.activation.program import program_readout
from ml.activation.readout import STATUS_COLUMNS, feedback, readout
from ml.activation.sequential import (
    Looks,
    always_valid_half_width,
    always_valid_p_value,
    fixed_horizon_p_values,
    mixture_rho_squared,
)
from ml.activation.settings import CONTROL
from tests.unit.activation.test_decisions_and_exports import ACTIVATION

DS = dt.date(2026, 10, 31)
ALPHA = 0.05
NO_STATUS = pd.DataFrame(columns=STATUS_COLUMNS)


# The care audience with revenue as its goal.
REVENUE_GOAL = ACTIVATION.model_copy(
    update={
        "audiences": {
            **ACTIVATION.audiences,
            "care": ACTIVATION.audiences["care"].model_copy(
                update={"goal": ACTIVATION.audiences["care"].goal.model_copy(update={"metric": "revenue"})}
            ),
        }
    }
)


def nightly(audience: str, nights: int, per_night: int, groups: dict[str, float], rng, revenue=None) -> pd.DataFrame:
    """Exposures assigned over `nights` nights (windows ending by DS), groups drawn with the given
    shares; `revenue(group, size)` draws outcomes, else conversion at 8%."""
    size = nights * per_night
    names = list(groups)
    group = rng.choice(names, size=size, p=np.array(list(groups.values())) / sum(groups.values()))
    window = ACTIVATION.audiences[audience].goal.window_days
    first = DS - dt.timedelta(days=window + nights - 1)
    assigned = [first + dt.timedelta(days=int(n)) for n in np.repeat(np.arange(nights), per_night)]
    frame = pd.DataFrame(
        {"audience": audience, "customer_id": [f"C{n}" for n in range(size)], "experiment_group": group}
    )
    frame["assigned_on"] = assigned
    if revenue is None:
        frame["converted"] = rng.random(size) < 0.08
    else:
        frame["revenue"] = np.concatenate([revenue(g, 1) for g in group]) if size else []
        frame["converted"] = frame["revenue"] > 0
    return frame


def test_the_interval_and_the_p_value_follow_the_published_formula_and_agree():
    rho2 = mixture_rho_squared(ALPHA, 2000)
    assert rho2 == pytest.approx((-2 * math.log(ALPHA) + math.log(1 - 2 * math.log(ALPHA))) / 2000)
    n, se = np.array([1000.0]), np.array([0.01])
    expected = 0.01 * math.sqrt(2 * (1000 * rho2 + 1) / (1000 * rho2) * math.log(math.sqrt(1000 * rho2 + 1) / ALPHA))
    half_width = always_valid_half_width(se, n, ALPHA, 2000)[0]
    assert half_width == pytest.approx(expected)
    assert half_width > 1.96 * 0.01  # wider than the one-look interval: the price of looking every night
    # The p-value reaches alpha exactly where the interval's edge reaches 0.
    assert always_valid_p_value(np.array([half_width / 0.01]), n, 2000, ALPHA)[0] == pytest.approx(ALPHA)
    assert always_valid_p_value(np.array([0.0]), n, 2000, ALPHA)[0] == 1.0


def test_aa_experiments_read_every_night_stay_at_the_nominal_rate_where_the_fixed_horizon_readout_does_not():
    """200 customers a night, 10% holdout, 8% conversion, 60 nightly looks, pause on harm: the old
    fixed-horizon readout (a z-test each night) was significant on some night in about 30% of runs."""
    rng = np.random.default_rng(20)
    runs, nights = 300, 60
    fixed_any = valid_any = paused = 0
    for _ in range(runs):
        exposures = nightly("care", nights, 200, {CONTROL: 0.1, "treatment": 0.9}, rng)
        results = readout(exposures, ACTIVATION, DS)
        row = results.iloc[0]
        valid_any += bool(row["is_significant"])
        status, _ = feedback(results, ACTIVATION, DS, NO_STATUS)
        paused += int((status["status"] == "paused").sum())
        # The fixed-horizon readout as it was read on each night.
        ready = pd.to_datetime(exposures["assigned_on"]).to_numpy() + np.timedelta64(30, "D")
        groups = exposures["experiment_group"].to_numpy()
        y = exposures["converted"].to_numpy(float)
        arm, control = (
            Looks.accumulate(
                ready[groups == g], np.unique(ready), y[groups == g], 0 * y[groups == g], y[groups == g] > 0
            )
            for g in ("treatment", CONTROL)
        )
        fixed = fixed_horizon_p_values(arm, control, min_outcomes=5)
        fixed_any += bool((fixed < ALPHA).any())
    monte_carlo = 2.5 * math.sqrt(ALPHA * (1 - ALPHA) / runs)
    assert valid_any / runs <= ALPHA + monte_carlo, valid_any / runs
    assert paused / runs <= ALPHA / 2 + monte_carlo  # harm is one side of the two-sided test
    assert fixed_any / runs > 0.2, fixed_any / runs  # the old readout's error, measured the same way


def test_revenue_aa_experiments_stay_at_the_nominal_rate():
    """Revenue: mostly zero, heavy-tailed when not (lognormal orders), 30 nightly looks."""
    rng = np.random.default_rng(21)
    runs = 200

    def revenue(group, size):
        return np.where(rng.random(size) < 0.1, rng.lognormal(3.5, 1.0, size), 0.0)

    significant = 0
    for _ in range(runs):
        exposures = nightly("care", 30, 200, {CONTROL: 0.5, "treatment": 0.5}, rng, revenue)
        significant += bool(readout(exposures, REVENUE_GOAL, DS).iloc[0]["is_significant"])
    assert significant / runs <= ALPHA + 2.5 * math.sqrt(ALPHA * (1 - ALPHA) / runs), significant / runs


def revenue_with_effect(effect: float, rng, nights=20, per_night=300) -> tuple[pd.DataFrame, float]:
    """Revenue per customer: a pre-period habit that predicts it (for CUPED) plus a known effect."""
    size = nights * per_night
    habit = rng.gamma(0.5, 40, size)
    exposures = nightly("care", nights, per_night, {CONTROL: 0.5, "treatment": 0.5}, rng)
    treated = (exposures["experiment_group"] == "treatment").to_numpy()
    exposures["revenue"] = np.maximum(
        habit * rng.lognormal(0, 0.5, size) + effect * treated + rng.normal(0, 5, size), 0
    )
    exposures["converted"] = exposures["revenue"] > 0
    exposures["pre_revenue"] = habit * rng.lognormal(0, 0.5, size)
    return exposures, effect


def test_a_planted_revenue_effect_is_found_and_its_interval_covers_it():
    rng = np.random.default_rng(3)
    exposures, effect = revenue_with_effect(6.0, rng)
    row = readout(exposures, REVENUE_GOAL, DS).iloc[0]
    assert row["goal_metric"] == "revenue" and row["is_significant"], row.to_dict()
    assert row["ci_lower"] < effect < row["ci_upper"] and row["ci_lower"] > 0
    assert row["conclusion"] == "treatment is better than control (always-valid)"
    assert row["incremental_revenue"] == pytest.approx(row["incremental_revenue_per_customer"] * row["arm_customers"])
    assert row["significant_since"] is not None and row["looks"] == 20


def test_cuped_narrows_intervals_and_they_keep_their_coverage():
    rng = np.random.default_rng(4)
    covered, narrower, reductions = 0, 0, []
    runs = 100
    for _ in range(runs):
        exposures, effect = revenue_with_effect(2.0, rng, nights=10, per_night=200)
        row = readout(exposures, REVENUE_GOAL, DS).iloc[0]
        plain = readout(exposures.assign(pre_revenue=0.0), REVENUE_GOAL, DS).iloc[0]
        covered += row["ci_lower"] <= effect <= row["ci_upper"]
        narrower += row["ci_upper"] - row["ci_lower"] < plain["ci_upper"] - plain["ci_lower"]
        reductions.append(row["variance_reduction"])
    assert covered / runs >= 1 - ALPHA - 2.5 * math.sqrt(ALPHA * (1 - ALPHA) / runs)
    assert narrower == runs and np.mean(reductions) > 0.3


def test_a_handful_of_customers_is_never_significant():
    exposures = pd.DataFrame(
        {
            "audience": "care",
            "customer_id": [f"C{n}" for n in range(26)],
            "experiment_group": [CONTROL] * 6 + ["treatment"] * 20,
            "assigned_on": DS - dt.timedelta(days=40),
            "converted": [True, True, False, False, False, False] + [False] * 20,
        }
    )
    row = readout(exposures, ACTIVATION, DS).iloc[0]
    assert row["looks"] == 0 and not row["is_significant"] and row["conclusion"].startswith("waiting")


def test_arms_are_compared_with_each_other_and_the_intervals_hold_together():
    rng = np.random.default_rng(2)
    exposures = nightly("win_back", 10, 1500, {CONTROL: 0.3, "a": 0.2, "b": 0.3, "c": 0.2}, rng)
    boost = (exposures["experiment_group"] == "b") & (rng.random(len(exposures)) < 0.08)
    exposures["converted"] = exposures["converted"] | boost
    results = readout(exposures, ACTIVATION, DS).set_index(["arm", "baseline"])
    assert len(results) == 6 and (results["comparisons"] == 6).all()  # 3 against control + 3 pairs
    assert {("b", "a"), ("c", "a"), ("c", "b")} <= set(results.index)
    assert results.loc[("b", CONTROL), "is_significant"] and results.loc[("b", "a"), "is_significant"]
    assert results.loc[("c", "b"), "is_significant"] and results.loc[("c", "b"), "effect"] < 0
    assert not results.loc[("a", CONTROL), "is_significant"]
    # Significant exactly when the interval (at alpha / comparisons) excludes 0.
    excludes = (results["ci_lower"] > 0) | (results["ci_upper"] < 0)
    assert (excludes == results["is_significant"]).all()


def test_versions_are_never_pooled():
    rng = np.random.default_rng(6)
    first = nightly("care", 5, 400, {CONTROL: 0.5, "treatment": 0.5}, rng).assign(
        experiment_version="v1", version_number=1
    )
    second = nightly("care", 5, 400, {CONTROL: 0.5, "treatment": 0.5}, rng).assign(
        experiment_version="v2", version_number=2, customer_id=lambda f: "D" + f["customer_id"]
    )
    results = readout(pd.concat([first, second]), ACTIVATION, DS)
    assert results["experiment_version"].tolist() == ["v1", "v2"]
    assert results["version_number"].tolist() == [1, 2]
    assert (results["arm_customers"] + results["baseline_customers"]).tolist() == [2000, 2000]


def test_money_counts_offer_and_contact_costs_and_roi_divides_by_what_the_arm_cost():
    economics = {"margin_share": 0.5, "offers": {"A": {"discount_share": 0.1, "cost_per_order": 2.0}}}
    activation = ACTIVATION.model_copy(update={"economics": ACTIVATION.economics.model_validate(economics)})
    rng = np.random.default_rng(9)
    exposures = nightly("win_back", 5, 2000, {CONTROL: 0.5, "a": 0.5}, rng)
    treated = exposures["experiment_group"] == "a"
    exposures["revenue"] = np.where(exposures["converted"] | (treated & (rng.random(len(exposures)) < 0.1)), 50.0, 0.0)
    exposures["converted"] = exposures["revenue"] > 0
    exposures["orders"] = exposures["converted"].astype(int)
    exposures["offer_code"] = np.where(treated, "A", None)
    exposures["contact_cost"] = np.where(treated, 0.5, 0.0)
    row = readout(exposures, activation, DS).set_index("arm").loc["a"]
    arm = exposures[treated]
    cost = 0.5 * len(arm) + (0.1 * arm["revenue"] + 2.0 * arm["orders"]).sum()
    assert row["arm_cost"] == pytest.approx(cost)
    assert row["cost_per_arm_customer"] == pytest.approx(cost / len(arm))
    control = exposures[~treated]
    profit_difference = (0.5 * arm["revenue"].sum() - cost) / len(arm) - 0.5 * control["revenue"].mean()
    assert row["incremental_profit_per_customer"] == pytest.approx(profit_difference, rel=0.05)  # CUPED moves it a bit
    assert row["roi"] == pytest.approx(row["incremental_profit_per_customer"] / row["cost_per_arm_customer"])
    assert row["roi_ci_lower"] < row["roi"] < row["roi_ci_upper"]


def test_a_currency_without_a_rate_is_named_with_the_key_to_set(caplog):
    """The conversion itself is dbt's int_completed_orders (its unit test); a missing rate is a warning."""
    with duckdb.connect() as connection:
        connection.execute("create schema intermediate")
        connection.execute(
            "create table intermediate.int_orders_sequenced as select * from (values "
            "('C1', 'EUR', true), ('C2', 'GBP', true), ('C3', null, true), ('C4', 'CHF', true), ('C5', 'CHF', true), "
            "('C6', 'CHF', false)) as t(customer_id, currency, is_completed)"
        )
        economics = ACTIVATION.economics.model_validate({"currency": "EUR", "exchange_rates": {"gbp": 1.2}})
        with caplog.at_level("WARNING"):
            warn_missing_rates(connection, economics)
    assert "CHF (2 orders)" in caplog.text and "activation.economics.exchange_rates" in caplog.text
    assert "GBP" not in caplog.text and "EUR (" not in caplog.text


def population(size: int) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{n:05d}" for n in range(size)],
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
        frame[consent_column(channel)] = True
    return frame


HISTORY = pd.DataFrame({"ds": pd.Series(dtype="datetime64[us]"), "audience": [], "customer_id": [], "channel": []})


def test_the_global_holdout_gets_no_audience_and_is_a_stable_share():
    activation = ACTIVATION.model_copy(
        update={"global_holdout": ACTIVATION.global_holdout.model_copy(update={"percent": 10})}
    )
    customers = population(4000)
    result = decide(customers, HISTORY, activation, DS)
    held = in_global_holdout(customers["customer_id"], activation.global_holdout)
    assert 0.08 < held.mean() < 0.12
    assert not set(customers.loc[held, "customer_id"]) & set(result.assignments["customer_id"])
    reasons = result.decisions.set_index("customer_id")["reason"]
    assert (reasons[customers.loc[held, "customer_id"]] == "global_holdout").all()
    funnel = result.funnel[result.funnel["audience"] == "welcome"].set_index("step")["customers"]
    assert funnel["global_holdout"] == held.sum() and funnel["qualified"] == 4000
    # The same customers tomorrow, and none when it is off.
    assert (in_global_holdout(customers["customer_id"], activation.global_holdout) == held).all()
    assert not in_global_holdout(customers["customer_id"], ACTIVATION.global_holdout).any()


def test_the_program_readout_compares_everyone_else_with_the_global_holdout():
    activation = ACTIVATION.model_copy(
        update={"global_holdout": ACTIVATION.global_holdout.model_copy(update={"percent": 10})}
    )
    rng = np.random.default_rng(12)
    size = 20_000
    customers = pd.DataFrame({"customer_id": [f"C{n}" for n in range(size)]})
    customers["held_out"] = in_global_holdout(customers["customer_id"], activation.global_holdout)
    habit = rng.gamma(0.5, 60, size) * (rng.random(size) < 0.5)  # half buy nothing
    customers["pre_revenue"] = habit * rng.lognormal(0, 0.3, size)
    extra = 20.0 * (rng.random(size) < 0.4) * ~customers["held_out"]  # 8 per personalized customer on average
    customers["revenue"] = habit * rng.lognormal(0, 0.3, size) + extra
    customers["orders"] = (customers["revenue"] > 0).astype(int)
    customers["cost"] = np.where(customers["held_out"], 0.0, 1.0)
    customers["profit"] = 0.3 * customers["revenue"] - customers["cost"]
    row = program_readout(customers, activation, DS).iloc[0]
    assert row["incremental_revenue_ci_lower"] < 8.0 < row["incremental_revenue_ci_upper"]
    true_profit = 0.3 * 8.0 - 1.0
    assert row["incremental_profit_ci_lower"] < true_profit < row["incremental_profit_ci_upper"]
    assert row["holdout_customers"] == customers["held_out"].sum() and row["variance_reduction"] > 0.5
    assert row["conclusion"] == "personalization earned more than it cost (always-valid)"


def harmful_readout(rng) -> pd.DataFrame:
    exposures = nightly("welcome", 10, 1000, {CONTROL: 0.5, "treatment": 0.5}, rng)
    exposures["converted"] = rng.random(len(exposures)) < np.where(exposures["experiment_group"] == CONTROL, 0.3, 0.2)
    exposures["experiment_version"] = ACTIVATION.audiences["welcome"].experiment_version(ACTIVATION.salt)
    return readout(exposures, ACTIVATION, DS)


def test_harm_pauses_the_audience_once_with_its_evidence_and_a_new_revision_resumes_it():
    results = harmful_readout(np.random.default_rng(8))
    status, audit = feedback(results, ACTIVATION, DS, NO_STATUS)
    welcome = status.set_index("audience").loc["welcome"]
    assert welcome["status"] == "paused" and "treatment against control" in welcome["reason"]
    assert audit[["audience", "action"]].values.tolist() == [["welcome", "paused"]]
    assert "always-valid" in audit.iloc[0]["evidence"] and "significant since" in audit.iloc[0]["evidence"]
    # The next night: still paused, no second action.
    tomorrow = DS + dt.timedelta(days=1)
    status_again, audit_again = feedback(results.assign(ds=tomorrow), ACTIVATION, tomorrow, status)
    assert status_again.set_index("audience").loc["welcome", "status"] == "paused" and audit_again.empty
    # The switch off: nothing paused.
    switched_off = ACTIVATION.model_copy(update={"pause_on_significant_negative_lift": False})
    assert (feedback(results, switched_off, DS, NO_STATUS)[0]["status"] == "active").all()
    # A new revision is a new version with no evidence yet: active, and the resumption is audited.
    revised = ACTIVATION.model_copy(
        update={
            "audiences": {
                **ACTIVATION.audiences,
                "welcome": ACTIVATION.audiences["welcome"].model_copy(update={"revision": 2}),
            }
        }
    )
    status_resumed, audit_resumed = feedback(results, revised, tomorrow, status)
    resumed = status_resumed.set_index("audience").loc["welcome"]
    assert resumed["status"] == "active" and resumed["experiment_version"] != welcome["experiment_version"]
    assert audit_resumed[["audience", "action"]].values.tolist() == [["welcome", "resumed"]]
    # And the decisions of a paused audience assign nobody.
    result = decide(population(20), HISTORY, ACTIVATION, DS, paused=frozenset({"welcome"}))
    assert "welcome" not in set(result.assignments["audience"])


def test_a_winning_arm_is_shipped_when_configured_as_a_new_version_keeping_the_holdout():
    rng = np.random.default_rng(14)
    exposures = nightly("win_back", 10, 3000, {CONTROL: 0.3, "a": 0.2, "b": 0.3, "c": 0.2}, rng)
    exposures["converted"] = rng.random(len(exposures)) < np.where(exposures["experiment_group"] == "b", 0.16, 0.08)
    exposures["experiment_version"] = ACTIVATION.audiences["win_back"].experiment_version(ACTIVATION.salt)
    results = readout(exposures, ACTIVATION, DS)
    assert (feedback(results, ACTIVATION, DS, NO_STATUS)[0]["status"] == "active").all()  # off by default
    shipping = ACTIVATION.model_copy(update={"ship_winning_arm": True})
    status, audit = feedback(results, shipping, DS, NO_STATUS)
    win_back = status.set_index("audience").loc["win_back"]
    assert win_back["status"] == "winner_shipped" and win_back["shipped_arm"] == "b"
    assert win_back["experiment_version"] != win_back["base_version"]
    assert audit[["audience", "action", "arm"]].values.tolist() == [["win_back", "winner_shipped", "b"]]
    lapsed = population(3000).assign(frequency=3, recency_days=40, score=0.1)  # below cross_sell's 0.5
    result = decide(lapsed, HISTORY, shipping, DS, shipped={"win_back": "b"})
    groups = result.assignments.loc[result.assignments["audience"] == "win_back", "experiment_group"]
    assert set(groups) == {CONTROL, "b"} and 0.25 < (groups == CONTROL).mean() < 0.35
    versions = set(result.assignments.loc[result.assignments["audience"] == "win_back", "experiment_version"])
    assert versions == {win_back["experiment_version"]}


def test_a_replay_without_the_needed_columns_says_what_it_needs():
    with pytest.raises(ValueError, match="converted or revenue"):
        readout(
            pd.DataFrame(
                {"audience": ["care"], "customer_id": ["C1"], "experiment_group": [CONTROL], "assigned_on": [DS]}
            ),
            ACTIVATION,
            DS,
        )


def test_exposure_is_counted_beside_the_intention_to_treat_readout_and_changes_no_estimate():
    rng = np.random.default_rng(5)
    exposures, _ = revenue_with_effect(6.0, rng)
    served = exposures.assign(was_served=rng.random(len(exposures)) < 0.4)
    with_exposure = readout(served, REVENUE_GOAL, DS).iloc[0]
    without = readout(exposures, REVENUE_GOAL, DS).iloc[0]
    treated = served["experiment_group"] == "treatment"
    assert with_exposure["arm_served_customers"] == int(served.loc[treated, "was_served"].sum()) > 0
    assert with_exposure["baseline_served_customers"] == int(served.loc[~treated, "was_served"].sum()) > 0
    assert without["arm_served_customers"] == 0  # no decision log: nobody counted as served
    for figure in ("effect", "ci_lower", "ci_upper", "p_value", "incremental_profit"):
        assert with_exposure[figure] == without[figure]  # assignment stays the unit of analysis
