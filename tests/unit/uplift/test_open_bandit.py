"""The off-policy estimators against an independent ground truth: the Open Bandit Dataset logged the
same fashion recommendations under two policies (uniform random, Bernoulli Thompson sampling) with
the true probability of every logged action. Each policy's value estimated from the other's log must
match what it earned on-policy (its own log's click rate)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.uplift.evaluation import LoggedData, evaluate_policies
from tools.open_bandit import read_log

ITEMS = 80
BOOTSTRAP = 300


@pytest.fixture(scope="module")
def logs() -> dict[str, pd.DataFrame]:
    return {policy: read_log(policy) for policy in ("random", "bts")}


def logged(log: pd.DataFrame) -> LoggedData:
    """Actions are items; the outcome model (for DR) is the log's click rate of each item and position."""
    rate = log.groupby(["item_id", "position"])["click"].mean()
    predicted = np.zeros((len(log), ITEMS))
    for position in log["position"].unique():
        by_item = rate.xs(position, level="position").reindex(range(ITEMS)).fillna(log["click"].mean())
        predicted[log["position"].to_numpy() == position] = by_item.to_numpy()
    return LoggedData(
        log["item_id"].to_numpy(), log["propensity_score"].to_numpy(), log["click"].to_numpy(float), predicted
    )


def thompson_policy(bts: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
    """Thompson sampling's probability of each item per position: its logged probabilities, averaged
    per item and position and normalized (the policy is context-free: it depends on the position only)."""
    share = bts.groupby(["position", "item_id"])["propensity_score"].mean().unstack(fill_value=0.0)
    share = share.reindex(columns=range(ITEMS), fill_value=0.0)
    share = share.div(share.sum(axis=1), axis=0)
    return share.loc[positions].to_numpy()


@pytest.mark.parametrize("estimator", ["ipw", "snipw", "dr"])
def test_the_random_policy_valued_from_thompson_sampling_logs_matches_its_own_click_rate(logs, estimator):
    truth = logs["random"]["click"].mean()
    bts = logs["bts"]
    uniform = np.full((len(bts), ITEMS), 1 / ITEMS)
    value = evaluate_policies(logged(bts), {"random": uniform}, BOOTSTRAP, 0.95)["random"][estimator]
    assert value.lower <= truth <= value.upper, (estimator, value, truth)
    assert value.upper - value.lower < 0.01  # informative: the click rate is 0.0038


@pytest.mark.parametrize("estimator", ["ipw", "snipw", "dr"])
def test_thompson_sampling_valued_from_random_logs_matches_its_own_click_rate(logs, estimator):
    truth = logs["bts"]["click"].mean()
    random = logs["random"]
    policy = thompson_policy(logs["bts"], random["position"].to_numpy())
    value = evaluate_policies(logged(random), {"bts": policy}, BOOTSTRAP, 0.95)["bts"][estimator]
    assert value.lower <= truth <= value.upper, (estimator, value, truth)
    assert value.upper - value.lower < 0.01
