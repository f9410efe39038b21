"""Experiment readouts: each arm of each audience against its control group on the audience's goal,
once the goal's window has passed (issue 8, part 3), and the feedback loop that pauses an audience
whose readout shows a significant negative lift (part 4).

The unit is the customer: a customer's first assignment to an audience starts their window (the
hash keeps them in the same group every day). A customer counts once the whole window has ended
by the end of ds, and the outcome is read from staging, which holds data up to ds only, so a
readout never peeks past ds. Per arm against control: conversion rates, absolute and relative lift,
the 95% confidence interval of the difference (Wald), the two-proportion z-test p-value, Holm's
correction across the arms of an audience, and the minimum detectable effect at 80% power.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from ml.activation.population import existing_tables
from ml.activation.settings import CONTROL, ActivationConfig
from ml.config import load_config, warehouse_path
from ml.partitions import replace_partition

log = logging.getLogger(__name__)

RESULTS = "marts.fct_experiment_results"
STATUS = "activation.audience_status"
POWER = 0.8
CONFIDENCE = 0.95
# The z-test's normal approximation holds when every group has at least this many conversions and
# non-conversions (the usual rule of thumb). Below it, a handful of customers could pause an audience:
# on the demo's first readout, 0 of 20 against 2 of 6 gave p = 0.014.
MIN_OUTCOMES_PER_GROUP = 5

RESULTS_DDL = f"""
create schema if not exists marts;
create table if not exists {RESULTS} (
    ds date not null, audience varchar not null, arm varchar not null, goal_metric varchar not null,
    window_days integer not null, first_assigned date, last_assigned date,
    control_customers bigint not null, control_conversions bigint not null,
    arm_customers bigint not null, arm_conversions bigint not null,
    control_rate double, arm_rate double, absolute_lift double, relative_lift double,
    ci_lower double, ci_upper double, p_value double, p_value_holm double,
    significance_level double not null, is_significant boolean not null, mde_at_80_power double,
    hypothesis varchar, null_hypothesis varchar, conclusion varchar not null
)
"""
# What `compare` returns for one arm (the mde last).
STAT_COLUMNS = (
    "control_rate",
    "arm_rate",
    "absolute_lift",
    "relative_lift",
    "ci_lower",
    "ci_upper",
    "p_value",
    "mde_at_80_power",
)
RESULT_COLUMNS = [
    "ds",
    "audience",
    "arm",
    "goal_metric",
    "window_days",
    "first_assigned",
    "last_assigned",
    "control_customers",
    "control_conversions",
    "arm_customers",
    "arm_conversions",
    *STAT_COLUMNS[:-1],
    "p_value_holm",
    "significance_level",
    "is_significant",
    STAT_COLUMNS[-1],
    "hypothesis",
    "null_hypothesis",
    "conclusion",
]
STATUS_DDL = f"""
create schema if not exists activation;
create table if not exists {STATUS} (
    ds date not null, audience varchar not null, status varchar not null, reason varchar
)
"""


def compare(
    control_customers: int, control_conversions: int, arm_customers: int, arm_conversions: int, alpha: float
) -> dict[str, float | None]:
    """One arm against control: rates, lifts, the 95% interval of the difference, the pooled
    two-proportion z-test p-value, and the smallest true difference the test would detect with 80%
    power at this alpha and these sizes, around the pooled rate of both groups (the rate under the
    null hypothesis; the control rate alone gives an MDE of 0 when control has no conversion)."""
    result: dict[str, float | None] = dict.fromkeys(STAT_COLUMNS)
    if control_customers == 0 or arm_customers == 0:
        return result
    control_rate, arm_rate = control_conversions / control_customers, arm_conversions / arm_customers
    lift = arm_rate - control_rate
    result.update(control_rate=control_rate, arm_rate=arm_rate, absolute_lift=lift)
    result["relative_lift"] = lift / control_rate if control_rate > 0 else None
    lower, upper = confint_proportions_2indep(
        arm_conversions,
        arm_customers,
        control_conversions,
        control_customers,
        method="wald",
        compare="diff",
        alpha=1 - CONFIDENCE,
    )
    result.update(ci_lower=float(lower), ci_upper=float(upper))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no variance (0 or 100% in both): no evidence
        _, p_value = proportions_ztest([arm_conversions, control_conversions], [arm_customers, control_customers])
    result["p_value"] = float(p_value) if np.isfinite(p_value) else 1.0
    pooled = (control_conversions + arm_conversions) / (control_customers + arm_customers)
    spread = np.sqrt(pooled * (1 - pooled) * (1 / arm_customers + 1 / control_customers))
    result["mde_at_80_power"] = float((norm.ppf(1 - alpha / 2) + norm.ppf(POWER)) * spread)
    return result


def _large_enough(row: dict) -> bool:
    outcomes = [
        row["control_conversions"],
        row["control_customers"] - row["control_conversions"],
        row["arm_conversions"],
        row["arm_customers"] - row["arm_conversions"],
    ]
    return min(outcomes) >= MIN_OUTCOMES_PER_GROUP


def _conclusion(row: dict, alpha: float) -> tuple[bool, str]:
    if row["p_value_holm"] is None:
        return False, "no exposures with a finished window yet"
    if not _large_enough(row):
        return (
            False,
            f"too few outcomes for the z-test (needs {MIN_OUTCOMES_PER_GROUP} conversions and non-conversions "
            "in each group)",
        )
    if row["p_value_holm"] >= alpha:
        return False, "cannot reject the null hypothesis"
    return True, f"reject the null hypothesis: {'positive' if row['absolute_lift'] > 0 else 'negative'} lift"


def readout(exposures: pd.DataFrame, activation: ActivationConfig, ds: dt.date) -> pd.DataFrame:
    """Results per audience and arm from one row per exposed customer (audience, experiment_group,
    assigned_on, converted)."""
    rows = []
    for name, audience in activation.audiences.items():
        mine = exposures[exposures["audience"] == name]
        control = mine[mine["experiment_group"] == CONTROL]
        arms = []
        for arm in audience.arms():
            treated = mine[mine["experiment_group"] == arm.name]
            stats = compare(
                len(control),
                int(control["converted"].sum()),
                len(treated),
                int(treated["converted"].sum()),
                audience.significance_level,
            )
            arms.append(
                {
                    "ds": ds,
                    "audience": name,
                    "arm": arm.name,
                    "goal_metric": audience.goal.metric,
                    "window_days": audience.goal.window_days,
                    "first_assigned": mine["assigned_on"].min() if len(mine) else None,
                    "last_assigned": mine["assigned_on"].max() if len(mine) else None,
                    "control_customers": len(control),
                    "control_conversions": int(control["converted"].sum()),
                    "arm_customers": len(treated),
                    "arm_conversions": int(treated["converted"].sum()),
                    **stats,
                    "significance_level": audience.significance_level,
                    "hypothesis": audience.hypothesis,
                    "null_hypothesis": audience.null_hypothesis,
                }
            )
        tested = [i for i, arm in enumerate(arms) if arm["p_value"] is not None]
        if tested:  # Holm across the arms of one audience: the family-wise error stays at alpha
            _, adjusted, _, _ = multipletests([arms[i]["p_value"] for i in tested], method="holm")
            for i, p_value in zip(tested, adjusted, strict=True):
                arms[i]["p_value_holm"] = float(p_value)
        for arm in arms:
            arm["p_value_holm"] = arm.get("p_value_holm")
            arm["is_significant"], arm["conclusion"] = _conclusion(arm, audience.significance_level)
        rows += arms
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def exposures(ds: dt.date, activation: ActivationConfig) -> pd.DataFrame:
    """Each customer's first assignment per audience whose goal window has ended by the end of ds,
    with whether the goal happened within the window (staging: data up to ds only)."""
    goals = pd.DataFrame(
        [
            {"audience": name, "metric": audience.goal.metric, "window_days": audience.goal.window_days}
            for name, audience in activation.audiences.items()
        ],
        columns=["audience", "metric", "window_days"],
    )
    empty = pd.DataFrame(columns=["audience", "customer_id", "experiment_group", "assigned_on", "converted"])
    with duckdb.connect(str(warehouse_path())) as connection:
        if goals.empty or "assignments" not in existing_tables(connection, "experiments"):
            return empty
        connection.register("goals", goals.astype({"window_days": "int32"}))
        return connection.execute(
            """
            with first_assignments as (
                select audience, customer_id, min(ds) as assigned_on, arg_min(experiment_group, ds) as experiment_group
                from experiments.assignments
                where ds <= $ds
                group by all
            ),
            exposed as (
                select f.*, g.metric,
                    cast(f.assigned_on + 1 as timestamp) as window_start,
                    cast(f.assigned_on + 1 + g.window_days as timestamp) as window_end
                from first_assignments as f
                inner join goals as g using (audience)
                where f.assigned_on + g.window_days <= $ds
            ),
            orders as (
                select customer_id, ordered_at as happened_at from intermediate.int_orders_sequenced where is_completed
            ),
            activity as (
                select customer_id, happened_at from orders
                union all
                select customer_id, occurred_at from staging.stg_events
            )
            select e.audience, e.customer_id, e.experiment_group, e.assigned_on,
                case e.metric
                    when 'purchase' then exists (
                        select 1 from orders as o where o.customer_id = e.customer_id
                            and o.happened_at >= e.window_start and o.happened_at < e.window_end)
                    else exists (
                        select 1 from activity as a where a.customer_id = e.customer_id
                            and a.happened_at >= e.window_start and a.happened_at < e.window_end)
                end as converted
            from exposed as e
            order by e.audience, e.customer_id
            """,
            {"ds": ds},
        ).df()


def paused_audiences(results: pd.DataFrame, activation: ActivationConfig) -> dict[str, str]:
    """Audiences to pause, with why: an arm with a significant negative lift (when the switch is on)."""
    if not activation.pause_on_significant_negative_lift or results.empty:
        return {}
    harmful = results[results["is_significant"] & (results["absolute_lift"] < 0)]
    return {
        row.audience: (
            f"arm {row.arm}: {row.arm_rate:.1%} against control {row.control_rate:.1%} "
            f"(lift {row.absolute_lift:+.1%}, Holm p={row.p_value_holm:.3g} < {row.significance_level:g})"
        )
        for row in harmful.itertuples()
    }


def read_paused(ds: dt.date) -> set[str]:
    with duckdb.connect(str(warehouse_path())) as connection:
        if "audience_status" not in existing_tables(connection, "activation"):
            return set()
        rows = connection.execute(f"select audience from {STATUS} where ds = ? and status = 'paused'", [ds]).fetchall()
    return {audience for (audience,) in rows}


def read_experiments(ds: str) -> dict[str, object]:
    """Replace the ds partitions of marts.fct_experiment_results and activation.audience_status."""
    ds_date = dt.date.fromisoformat(ds)
    activation = load_config().activation
    results = readout(exposures(ds_date, activation), activation, ds_date)
    paused = paused_audiences(results, activation)
    status = pd.DataFrame(
        [
            {
                "ds": ds_date,
                "audience": name,
                "status": "paused" if name in paused else "active",
                "reason": paused.get(name),
            }
            for name in activation.audiences
        ],
        columns=["ds", "audience", "status", "reason"],
    )
    replace_partition(RESULTS, RESULTS_DDL, ds_date, results, order_by="audience, arm", purge_erased=False)
    replace_partition(STATUS, STATUS_DDL, ds_date, status, order_by="audience", purge_erased=False)
    for name, reason in paused.items():
        log.warning("ds=%s audience %s paused by its readout: %s", ds, name, reason)
    read = results[results["p_value"].notna()] if not results.empty else results
    log.info(
        "ds=%s experiment readouts: %d arms with finished windows, %d significant",
        ds,
        len(read),
        int(read["is_significant"].sum()) if len(read) else 0,
    )
    return {
        "arms_read": len(read),
        "significant": int(read["is_significant"].sum()) if len(read) else 0,
        "paused": sorted(paused),
    }
