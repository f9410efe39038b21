"""How well a ranking targets the persuadable, and what a targeting policy is worth, from randomized
sends held out from the fit, with bootstrap intervals.

Qini (Radcliffe 2007, "Using control groups to target on predicted lift"): rank the held-out sends by
score; the incremental goal of targeting the top k is estimated without bias by summing the
inverse-probability-weighted differences  psi = t y / e - (1 - t) y / (1 - e)  over them (e: the
logged probability of the arm within the arm-vs-control pair). Random targeting gains k/n of the
whole. The Qini coefficient here is the mean, over every depth k, of the gain above random per
held-out customer: 0 for random targeting, positive when the ranking puts the persuadable first,
negative when it puts the sleeping dogs first. Intervals: percentile bootstrap over held-out sends
(Poisson weights; Efron & Tibshirani 1993), paired when two rankings are compared on the same sends.

Off-policy evaluation (Dudik, Langford & Li 2011, "Doubly robust policy evaluation and learning"):
the value per customer of a policy pi from sends logged under known probabilities p:
    IPW   mean( pi(a_i|x_i) / p_i * r_i )                      (Horvitz & Thompson 1952)
    SNIPW sum( pi/p * r ) / sum( pi/p )                          (Swaminathan & Joachims 2015)
    DR    mean( sum_a pi(a|x_i) q(x_i, a) + pi(a_i|x_i) / p_i * (r_i - q(x_i, a_i)) )
Unbiased (IPW, DR) when every action the policy takes had a positive logged probability, which
randomized sends and the exploration share guarantee.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.constants import SEED


@dataclass(frozen=True)
class Estimate:
    value: float
    lower: float
    upper: float

    def as_dict(self, prefix: str) -> dict[str, float]:
        return {prefix: self.value, f"{prefix}_lower": self.lower, f"{prefix}_upper": self.upper}


def _interval(point: float, draws: np.ndarray, level: float) -> Estimate:
    tail = (1 - level) / 2 * 100
    lower, upper = np.nanpercentile(draws, [tail, 100 - tail]) if len(draws) else (np.nan, np.nan)
    return Estimate(float(point), float(lower), float(upper))


def bootstrap_weights(n: int, samples: int, seed: int = SEED):
    """Poisson(1) weights per resample (the bootstrap without materializing the resampled rows)."""
    rng = np.random.default_rng(seed)
    for _ in range(samples):
        yield rng.poisson(1.0, n).astype(float)


def transformed_outcome(y: np.ndarray, treated: np.ndarray, e: np.ndarray) -> np.ndarray:
    """psi: its mean over any set of sends chosen by x alone is their mean effect (unbiased)."""
    t = treated.astype(float)
    return t * y / e - (1 - t) * y / (1 - e)


def qini(score: np.ndarray, psi: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean over depths of the gain above random targeting, per customer (see the module docstring)."""
    order = np.lexsort((np.arange(len(score)), -score))  # highest first; ties in row order
    w = np.ones(len(score)) if weights is None else weights[order]
    gain = np.cumsum(w * psi[order])
    reached = np.cumsum(w)
    total = reached[-1] if len(reached) else 0.0
    if total <= 0:
        return float("nan")
    above_random = gain - reached / total * gain[-1]
    return float(np.sum(w * above_random) / total / total)


@dataclass(frozen=True)
class QiniComparison:
    model: Estimate
    baseline: Estimate  # the propensity-ranked targeting on the same sends
    difference: Estimate  # model minus baseline, paired


def compare_rankings(
    model_score: np.ndarray, baseline_score: np.ndarray, psi: np.ndarray, samples: int, level: float
) -> QiniComparison:
    draws = np.array(
        [(qini(model_score, psi, w), qini(baseline_score, psi, w)) for w in bootstrap_weights(len(psi), samples)]
    ).reshape(-1, 2)
    model, baseline = qini(model_score, psi), qini(baseline_score, psi)
    return QiniComparison(
        _interval(model, draws[:, 0], level),
        _interval(baseline, draws[:, 1], level),
        _interval(model - baseline, draws[:, 0] - draws[:, 1], level),
    )


# ----------------------------------------------------------------------------- off-policy evaluation


@dataclass(frozen=True)
class LoggedData:
    """Sends logged under known probabilities: the action taken (column of q and policies), its
    probability, the reward, and an outcome model's prediction of every action's reward."""

    action: np.ndarray  # int, per send
    probability: np.ndarray  # logged probability of that action
    reward: np.ndarray
    predicted: np.ndarray  # (sends, actions): q(x, a)


def policy_values(logged: LoggedData, policy: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """IPW, SNIPW and DR values per customer of `policy` (sends x actions, each row a distribution)."""
    w = np.ones(len(logged.action)) if weights is None else weights
    rows = np.arange(len(logged.action))
    ratio = policy[rows, logged.action] / logged.probability
    total = w.sum()
    weighted = w * ratio
    direct = (policy * logged.predicted).sum(axis=1)
    correction = ratio * (logged.reward - logged.predicted[rows, logged.action])
    return {
        "ipw": float(np.sum(weighted * logged.reward) / total),
        "snipw": float(np.sum(weighted * logged.reward) / weighted.sum()) if weighted.sum() > 0 else float("nan"),
        "dr": float(np.sum(w * (direct + correction)) / total),
    }


def evaluate_policies(
    logged: LoggedData, policies: dict[str, np.ndarray], samples: int, level: float
) -> dict[str, dict[str, Estimate]]:
    """policy -> estimator -> value with its bootstrap interval; all policies on the same resamples,
    and, for every policy but the first, its difference to the first ("<name>_minus_<first>")."""
    names = list(policies)
    points = {name: policy_values(logged, policy) for name, policy in policies.items()}
    draws: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for w in bootstrap_weights(len(logged.action), samples):
        for name in names:
            draws[name].append(policy_values(logged, policies[name], w))
    result = {}
    for name in names:
        result[name] = {
            estimator: _interval(points[name][estimator], np.array([d[estimator] for d in draws[name]]), level)
            for estimator in points[name]
        }
    first = names[0]
    for name in names[1:]:
        result[f"{name}_minus_{first}"] = {
            estimator: _interval(
                points[name][estimator] - points[first][estimator],
                np.array([a[estimator] - b[estimator] for a, b in zip(draws[name], draws[first], strict=True)]),
                level,
            )
            for estimator in points[name]
        }
    return result
