"""Adaptive arm allocation (`allocation: thompson`): each night the arms' shares move toward the arm
most likely to be best, and the readouts stay valid.

Thompson sampling (Thompson 1933; Russo, Van Roy et al., "A tutorial on Thompson sampling", 2018):
each arm's share of tonight's treated customers is the posterior probability that it is the best arm
on the audience's goal, from the customers whose goal windows have ended. The posterior of a
conversion goal (purchase, engagement) is Beta(1 + conversions, 1 + non-conversions); of a revenue
goal, normal with the arm's mean and its standard error. Guards: no arm moves before every arm has
`min_exposures_per_arm` customers with an ended window (the configured weights hold until then), and
every arm keeps at least `floor_share` of the treated customers (the posterior never starves an arm,
and the logged probabilities stay bounded away from zero).

What stays fixed: the holdout (`holdout_percent`, by the stable hash: the bandit never touches it), the
experiment version (the weights are not part of it: `Audience.experiment_definition`), and a customer's
arm within the version (sticky: once assigned, always the same arm).

Why the readouts stay valid (per-period strata, by construction): every customer, held out or not,
draws an arm from the night's weights (`policy_arm`, an independent hash bucket); treated customers
get it, held-out customers only record it. Among the customers who drew arm A on any night, the
holdout is the same random share, so the readout compares arm A with the held-out customers who drew
A (ml.activation.readout.comparable): a randomized comparison whatever the weights were each night. A
comparison with the whole holdout would not be: arm A's customers would come mostly from the nights A
was favoured. tests/unit/activation/test_bandit.py shows the A/A false-positive rate at the nominal
level under adaptive allocation, and the naive comparison's above it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ml.activation.settings import CONTROL, ActivationConfig, Audience, BanditSettings
from ml.warehouse.declared import ddl
from ml.warehouse.partitions import replace_partition

ARM_WEIGHTS = "experiments.arm_weights"  # declared in dbt_project/models/outputs/_python_outputs.yml
SAMPLES = 20_000  # posterior draws per night: the shares' Monte Carlo error is below 0.4 points


def arm_statistics(version: pd.DataFrame, goal_metric: str) -> pd.DataFrame:
    """Per treated arm of one version: customers with an ended window, conversions, mean and variance
    of the goal (revenue for a revenue goal)."""
    treated = version[version["experiment_group"] != CONTROL]
    outcome = treated["revenue"].astype(float) if goal_metric == "revenue" else treated["converted"].astype(float)
    grouped = outcome.groupby(treated["experiment_group"])
    return pd.DataFrame(
        {
            "exposures": grouped.size(),
            "conversions": treated["converted"].astype(int).groupby(treated["experiment_group"]).sum(),
            "mean": grouped.mean(),
            "variance": grouped.var(ddof=1).fillna(0.0),
        }
    )


def probability_best(stats: pd.DataFrame, arms: list[str], goal_metric: str, seed: int) -> pd.Series:
    """The posterior probability that each arm is the best, by Monte Carlo over `SAMPLES` draws."""
    rng = np.random.default_rng(seed)
    stats = stats.reindex(arms).fillna({"exposures": 0, "conversions": 0, "mean": 0.0, "variance": 0.0})
    if goal_metric == "revenue":
        se = np.sqrt(stats["variance"].to_numpy() / np.maximum(stats["exposures"].to_numpy(), 1)) + 1e-9
        draws = rng.normal(stats["mean"].to_numpy(), se, size=(SAMPLES, len(arms)))
    else:
        wins = stats["conversions"].to_numpy(float)
        losses = stats["exposures"].to_numpy(float) - wins
        draws = rng.beta(1 + wins, 1 + losses, size=(SAMPLES, len(arms)))
    best = np.bincount(draws.argmax(axis=1), minlength=len(arms)) / SAMPLES
    return pd.Series(best, index=arms)


def thompson_weights(
    stats: pd.DataFrame, audience: Audience, settings: BanditSettings, seed: int
) -> tuple[dict[str, float], pd.Series, str]:
    """(tonight's share of the treated customers per arm, the posterior probability each is best, why)."""
    arms = [arm.name for arm in audience.arms()]
    configured = {arm.name: arm.weight / sum(a.weight for a in audience.arms()) for arm in audience.arms()}
    exposures = stats["exposures"].reindex(arms).fillna(0)
    best = probability_best(stats, arms, audience.goal.metric, seed)
    if (exposures < settings.min_exposures_per_arm).any():
        short = ", ".join(f"{arm} {int(n)}" for arm, n in exposures.items() if n < settings.min_exposures_per_arm)
        return configured, best, f"configured weights: arms below {settings.min_exposures_per_arm} exposures ({short})"
    floor = min(settings.floor_share, 1 / len(arms))
    shares = floor + (1 - floor * len(arms)) * best
    return shares.to_dict(), best, "posterior probability of being best, with a floor of " + f"{floor:.0%} per arm"


def nightly_weights(exposures: pd.DataFrame, activation: ActivationConfig, ds: dt.date) -> pd.DataFrame:
    """experiments.arm_weights of ds: for every thompson audience, tonight's share of each arm in the
    version the decisions will use, from the customers of that version whose windows ended by ds."""
    rows = []
    for name, audience in activation.audiences.items():
        if audience.allocation != "thompson":
            continue
        version = audience.experiment_version(activation.salt)
        mine = exposures[(exposures["audience"] == name) & (exposures["experiment_version"] == version)]
        stats = arm_statistics(mine, audience.goal.metric)
        seed = int(pd.Timestamp(ds).strftime("%Y%m%d"))  # a rerun of ds draws the same shares
        shares, best, why = thompson_weights(stats, audience, activation.bandit, seed)
        for arm, share in shares.items():
            rows.append(
                {
                    "ds": ds,
                    "audience": name,
                    "experiment_version": version,
                    "arm": arm,
                    "exposures": int(stats["exposures"].get(arm, 0)),
                    "conversions": int(stats["conversions"].get(arm, 0)),
                    "probability_best": float(best[arm]),
                    "weight": float(share),
                    "reason": why,
                }
            )
    return pd.DataFrame(rows)


def write_arm_weights(ds: dt.date, weights: pd.DataFrame) -> None:
    """experiments.arm_weights of ds: what read_experiments hands tonight's decisions."""
    replace_partition(ARM_WEIGHTS, ddl(ARM_WEIGHTS), ds, weights, order_by="audience, arm", purge_erased=False)
