"""Always-valid comparisons of two randomized groups, for readouts that are read every night.

A fixed-horizon test read every night and acted on at a fixed alpha is wrong far more often than
alpha: simulated A/A tests (200 customers a night, 8% conversion, 60 nightly looks) reached p < 0.05
on some night in about 30% of runs. The readout therefore uses a confidence sequence: intervals that
hold at every night at once, so stopping, pausing or shipping on any night keeps the error rate.

Method: the asymptotic confidence sequence of Waudby-Smith, Arnold, Wu, Howard and Ramdas,
"Time-uniform central limit theory and asymptotic confidence sequences" (Annals of Statistics 52(6),
2024), for the difference in means of two groups, as GrowthBook applies it. It equals the normal-
mixture sequential probability ratio test (Robbins 1970; Johari, Koomen, Pekelis and Walsh, "Always
valid inference: continuous monitoring of A/B tests", Operations Research 70(3), 2022) with a mixing
variance of rho^2 times the outcome's variance. With N customers in both groups and the standard
error s of the difference:

    half width = s * sqrt(2 (N rho^2 + 1) / (N rho^2) * log(sqrt(N rho^2 + 1) / alpha))
    p-value    = min(1, sqrt(N rho^2 + 1) * exp(-z^2 N rho^2 / (2 (N rho^2 + 1)))),  z = difference / s
    rho^2      = (-2 log alpha + log(1 - 2 log alpha)) / N*   (the interval is tightest at N* customers)

The p-value is below alpha exactly when the interval excludes 0. Across nights the readout keeps the
running intersection of the intervals and the running minimum of the p-values (both stay valid), so
evidence never flickers.

Assumptions: customers are independent and randomized with fixed probabilities within a version (a
change of weights is a new version); a customer's outcome is final once their goal window has ended
(each customer counts once, from their first assignment); the central limit theorem holds for the
difference in means (hence the minimum counts before a look counts); and the effect is stable over
the version's life (otherwise the sequence covers the running average effect).

CUPED (Deng, Xu, Kohavi and Walker, "Improving the sensitivity of online controlled experiments by
utilizing pre-experiment data", WSDM 2013): the outcome less theta times the centred pre-assignment
covariate, theta = cov(x, y) / var(x) over both groups at each look. It removes the variance the
covariate explains without biasing the difference, since assignment is independent of the past.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm


def mixture_rho_squared(alpha: float, planned_customers: int) -> float:
    """The mixing variance (relative to the outcome's variance) that makes the interval tightest at
    `planned_customers` (Waudby-Smith et al. 2024, section 3.2)."""
    log_term = -2 * math.log(alpha)
    return (log_term + math.log(1 + log_term)) / planned_customers


def always_valid_half_width(
    std_error: np.ndarray, customers: np.ndarray, alpha: float, planned_customers: int
) -> np.ndarray:
    scaled = np.asarray(customers, dtype=float) * mixture_rho_squared(alpha, planned_customers)
    with np.errstate(divide="ignore", invalid="ignore"):
        return std_error * np.sqrt(2 * (scaled + 1) / scaled * np.log(np.sqrt(scaled + 1) / alpha))


def always_valid_p_value(z: np.ndarray, customers: np.ndarray, planned_customers: int, alpha: float) -> np.ndarray:
    """1 / the mixture likelihood ratio, capped at 1. `alpha` only tunes the mixture (as for the width),
    so that p <= alpha exactly when the interval at alpha excludes 0."""
    scaled = np.asarray(customers, dtype=float) * mixture_rho_squared(alpha, planned_customers)
    log_ratio = np.square(z) * scaled / (2 * (scaled + 1)) - 0.5 * np.log1p(scaled)
    return np.minimum(1.0, np.exp(-log_ratio))


@dataclass(frozen=True)
class Looks:
    """Cumulative sums of one group's customers at each look (a look: a night with newly finished windows)."""

    customers: np.ndarray
    converted: np.ndarray  # customers with the outcome event (for the minimum counts)
    y: np.ndarray
    yy: np.ndarray
    x: np.ndarray
    xx: np.ndarray
    xy: np.ndarray

    @classmethod
    def accumulate(
        cls, ready: np.ndarray, look_dates: np.ndarray, y: np.ndarray, x: np.ndarray, converted: np.ndarray
    ) -> Looks:
        """Sums over the customers whose window ended by each look date (`ready` <= look)."""
        order = np.argsort(ready, kind="stable")
        ready, y, x, converted = ready[order], y[order], x[order], converted[order]
        upto = np.searchsorted(ready, look_dates, side="right")

        def cumulative(values: np.ndarray) -> np.ndarray:
            return np.r_[0.0, np.cumsum(values, dtype=float)][upto]

        return cls(
            customers=upto.astype(float),
            converted=cumulative(converted.astype(float)),
            y=cumulative(y),
            yy=cumulative(y * y),
            x=cumulative(x),
            xx=cumulative(x * x),
            xy=cumulative(x * y),
        )


@dataclass(frozen=True)
class Comparison:
    """An arm against its baseline at the last look, with the always-valid and the fixed-horizon figures."""

    looks: int  # looks that counted (enough outcomes in both groups)
    arm_mean: float | None
    baseline_mean: float | None
    effect: float | None  # CUPED-adjusted difference of means, arm less baseline
    ci_lower: float | None  # always valid: the running intersection of the nightly intervals
    ci_upper: float | None
    p_value: float | None  # always valid: the running minimum of the nightly p-values
    significant_since: int | None  # index of the first look whose p-value reached alpha
    fixed_horizon_ci_lower: float | None  # valid for one look only; shown for comparison
    fixed_horizon_ci_upper: float | None
    fixed_horizon_p_value: float | None
    variance_reduction: float | None  # 1 - (CUPED standard error / plain standard error)^2


def _moments(arm: Looks, baseline: Looks):
    """Per look: the CUPED-adjusted difference, its standard error and the plain standard error."""
    with np.errstate(divide="ignore", invalid="ignore"):
        total = arm.customers + baseline.customers
        mean_x = (arm.x + baseline.x) / total
        mean_y = (arm.y + baseline.y) / total
        var_x = (arm.xx + baseline.xx) / total - mean_x**2
        cov_xy = (arm.xy + baseline.xy) / total - mean_x * mean_y
        theta = np.where(var_x > 1e-12, cov_xy / var_x, 0.0)

        def group(looks: Looks):
            n = looks.customers
            mean_y_group, mean_x_group = looks.y / n, looks.x / n
            var_y = (looks.yy - n * mean_y_group**2) / (n - 1)
            var_x_group = (looks.xx - n * mean_x_group**2) / (n - 1)
            cov = (looks.xy - n * mean_x_group * mean_y_group) / (n - 1)
            adjusted_var = np.maximum(var_y - 2 * theta * cov + theta**2 * var_x_group, 0.0)
            adjusted_mean = mean_y_group - theta * (mean_x_group - mean_x)
            return mean_y_group, adjusted_mean, np.maximum(var_y, 0.0) / n, adjusted_var / n

        arm_mean, arm_adjusted, arm_plain_var, arm_var = group(arm)
        base_mean, base_adjusted, base_plain_var, base_var = group(baseline)
        return (
            arm_mean,
            base_mean,
            arm_adjusted - base_adjusted,
            np.sqrt(arm_var + base_var),
            np.sqrt(arm_plain_var + base_plain_var),
        )


def _counted(arm: Looks, baseline: Looks, std_error: np.ndarray, min_outcomes: int) -> np.ndarray:
    """Looks with enough converting and non-converting customers in both groups for the CLT."""
    counts = np.vstack(
        [arm.converted, arm.customers - arm.converted, baseline.converted, baseline.customers - baseline.converted]
    )
    return (counts.min(axis=0) >= min_outcomes) & (std_error > 0) & np.isfinite(std_error)


def compare_looks(arm: Looks, baseline: Looks, alpha: float, planned_customers: int, min_outcomes: int) -> Comparison:
    """The sequence of nightly comparisons reduced to what the readout shows at the last look."""
    arm_mean, base_mean, effect, std_error, plain_error = _moments(arm, baseline)
    counted = _counted(arm, baseline, std_error, min_outcomes)
    if not counted.any():
        last = len(arm.customers) - 1
        means = (
            (float(arm_mean[last]), float(base_mean[last]))
            if last >= 0 and arm.customers[last] and baseline.customers[last]
            else (None, None)
        )
        return Comparison(0, *means, None, None, None, None, None, None, None, None, None)
    effect, std_error, plain_error = effect[counted], std_error[counted], plain_error[counted]
    customers = (arm.customers + baseline.customers)[counted]
    half_width = always_valid_half_width(std_error, customers, alpha, planned_customers)
    p_values = np.minimum.accumulate(always_valid_p_value(effect / std_error, customers, planned_customers, alpha))
    lower, upper = np.maximum.accumulate(effect - half_width), np.minimum.accumulate(effect + half_width)
    if lower[-1] > upper[-1]:  # the effect moved outside the running intersection: show tonight's interval
        lower[-1], upper[-1] = effect[-1] - half_width[-1], effect[-1] + half_width[-1]
    reached = np.flatnonzero(p_values <= alpha)
    z_critical = norm.ppf(1 - alpha / 2)
    fixed_p = 2 * norm.sf(abs(effect[-1] / std_error[-1]))
    last_counted = np.flatnonzero(counted)[-1]
    return Comparison(
        looks=int(counted.sum()),
        arm_mean=float(arm_mean[last_counted]),
        baseline_mean=float(base_mean[last_counted]),
        effect=float(effect[-1]),
        ci_lower=float(lower[-1]),
        ci_upper=float(upper[-1]),
        p_value=float(p_values[-1]),
        significant_since=int(np.flatnonzero(counted)[reached[0]]) if len(reached) else None,
        fixed_horizon_ci_lower=float(effect[-1] - z_critical * std_error[-1]),
        fixed_horizon_ci_upper=float(effect[-1] + z_critical * std_error[-1]),
        fixed_horizon_p_value=float(fixed_p),
        variance_reduction=float(1 - (std_error[-1] / plain_error[-1]) ** 2) if plain_error[-1] > 0 else None,
    )


def fixed_horizon_p_values(arm: Looks, baseline: Looks, min_outcomes: int) -> np.ndarray:
    """What a fixed-horizon test said at each look (NaN before a look counts): the readout this module
    replaced, kept to measure how often reading it every night found an effect that was not there."""
    _, _, effect, std_error, _ = _moments(arm, baseline)
    counted = _counted(arm, baseline, std_error, min_outcomes)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counted, 2 * norm.sf(np.abs(effect / std_error)), np.nan)
