"""Thompson allocation (ml.activation.bandit): the shares follow the posterior within their guards,
and the readouts stay valid while the shares move (A/A false-positive rate at the nominal level)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from ml.activation.bandit import arm_statistics, thompson_weights
from ml.activation.decisions import Allocation, decide
from ml.activation.settings import CONTROL, BanditSettings
from ml.activation.store import STICKY_COLUMNS, read_allocations
from tests.unit.activation.test_decisions_and_exports import ACTIVATION, DS, populations

THOMPSON = ACTIVATION.audiences["win_back"].model_copy(update={"allocation": "thompson"})
ONLY_THOMPSON = ACTIVATION.model_copy(update={"audiences": {"win_back": THOMPSON}})
SETTINGS = BanditSettings(min_exposures_per_arm=30, floor_share=0.1)


def stats(rates: dict[str, float], n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        {"experiment_group": arm, "converted": converted, "revenue": 10.0 * converted}
        for arm, rate in rates.items()
        for converted in rng.random(n) < rate
    ]
    return arm_statistics(pd.DataFrame(rows), "purchase")


def test_the_shares_move_to_the_better_arm_with_a_floor_for_every_arm():
    shares, best, why = thompson_weights(stats({"a": 0.05, "b": 0.15, "c": 0.05}, 2_000), THOMPSON, SETTINGS, 1)
    assert best["b"] > 0.99 and shares["b"] == pytest.approx(0.8, abs=0.01)
    assert min(shares.values()) >= 0.1 - 1e-12 and sum(shares.values()) == pytest.approx(1)
    assert "posterior" in why


def test_no_share_moves_before_every_arm_has_enough_exposures():
    shares, _, why = thompson_weights(stats({"a": 0.05, "b": 0.5, "c": 0.05}, 20), THOMPSON, SETTINGS, 1)
    assert shares == pytest.approx({"a": 0.25, "b": 0.5, "c": 0.25})  # the configured weights 1:2:1
    assert "below 30 exposures" in why


def test_the_version_does_not_change_when_the_shares_do():
    assert "weight" not in str(THOMPSON.experiment_definition(ACTIVATION.salt)["arms"])
    moved = THOMPSON.model_copy(update={"variants": [v.model_copy(update={"weight": 5.0}) for v in THOMPSON.variants]})
    assert moved.experiment_version(ACTIVATION.salt) == THOMPSON.experiment_version(ACTIVATION.salt)


def simulate(seed: int, nights: int = 30, per_night: int = 150, window: int = 14) -> pd.DataFrame:
    """An A/A experiment under Thompson allocation: every arm and the holdout convert at the same rate,
    which rises over the nights (a trend the shares' drift could mistake for an effect)."""
    rng = np.random.default_rng(seed)
    start = dt.date(2026, 1, 1)
    holdout = THOMPSON.holdout_percent / 100
    frames: list[pd.DataFrame] = []
    for night in range(nights):
        today = start + dt.timedelta(days=night)
        so_far = pd.concat(frames) if frames else pd.DataFrame(columns=["experiment_group", "converted", "ready"])
        ended = so_far[so_far["ready"] <= pd.Timestamp(today)] if len(so_far) else so_far
        shares, _, _ = thompson_weights(arm_statistics(ended, "purchase"), THOMPSON, SETTINGS, seed * 1000 + night)
        arms = list(shares)
        drawn = rng.choice(arms, per_night, p=np.array(list(shares.values())) / sum(shares.values()))
        group = np.where(rng.random(per_night) < holdout, CONTROL, drawn)
        rate = 0.05 + 0.25 * night / nights
        converted = rng.random(per_night) < rate
        frames.append(
            pd.DataFrame(
                {
                    "audience": "win_back",
                    "experiment_version": THOMPSON.experiment_version(ACTIVATION.salt),
                    "customer_id": [f"S{seed}N{night}C{i}" for i in range(per_night)],
                    "experiment_group": group,
                    "policy_arm": drawn,
                    "assigned_on": pd.Timestamp(today),
                    "ready": pd.Timestamp(today + dt.timedelta(days=window)),
                    "converted": converted,
                    "revenue": converted * 40.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True).drop(columns="ready")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(populations())
def test_the_first_night_draws_from_the_configured_shares_and_later_nights_keep_each_customers_arm(generated):
    population, history = generated
    configured = {arm.name: arm.weight for arm in THOMPSON.arms()}
    first_night = Allocation(configured, pd.DataFrame(columns=STICKY_COLUMNS))  # nothing assigned yet
    first = decide(population, history, ONLY_THOMPSON, DS, allocations={"win_back": first_night}).assignments
    assert first["assignment_probability"].between(0, 1, inclusive="neither").all()
    treated = first[first["experiment_group"] != CONTROL]
    assert (treated["experiment_group"] == treated["policy_arm"]).all()

    moved = {arm: 0.9 if arm == min(configured) else 0.1 / (len(configured) - 1) for arm in configured}
    sticky = first.assign(audience="win_back")[STICKY_COLUMNS]
    later = decide(
        population,
        history,
        ONLY_THOMPSON,
        DS + dt.timedelta(days=1),
        allocations={"win_back": Allocation(moved, sticky)},
    )
    both = first.merge(later.assignments, on="customer_id", suffixes=("", "_later"))
    assert (both["policy_arm"] == both["policy_arm_later"]).all()
    assert np.allclose(both["assignment_probability"], both["assignment_probability_later"])


def test_before_any_night_the_allocation_is_the_configured_shares_and_no_one_is_sticky(tmp_path, monkeypatch):
    monkeypatch.setenv("PZ_DATA_DIR", str(tmp_path))  # an empty warehouse: no weights, no assignments yet
    allocation = read_allocations(DS, ONLY_THOMPSON, {})["win_back"]
    assert allocation.weights == {arm.name: arm.weight for arm in THOMPSON.arms()}
    assert allocation.sticky.empty and list(allocation.sticky.columns) == STICKY_COLUMNS


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(populations())
def test_the_draw_does_not_depend_on_the_order_the_weights_were_read_in(generated):
    population, history = generated
    weights = {"a": 0.5, "b": 0.3, "c": 0.2}
    reversed_order = dict(reversed(list(weights.items())))  # as another engine may return the rows
    drawn = [
        decide(
            population,
            history,
            ONLY_THOMPSON,
            DS,
            allocations={"win_back": Allocation(w, pd.DataFrame(columns=STICKY_COLUMNS))},
        )
        .assignments.sort_values("customer_id")[["customer_id", "policy_arm", "assignment_probability"]]
        .reset_index(drop=True)
        for w in (weights, reversed_order)
    ]
    pd.testing.assert_frame_equal(drawn[0], drawn[1])
