"""Experiment readouts every night: each arm against control and against the other arms, on the
audience's goal and in money, with always-valid intervals (ml/activation/sequential.py), per
experiment version; the feedback loop that pauses harm and ships winners, with its audit trail.

The unit is the customer: their first assignment to a version starts their goal window (the hash
keeps them in the same group every day). A customer counts once the whole window has ended by the
end of ds; outcomes come from staging, which holds data up to ds only, so a readout never peeks past
ds. A version is an audience's salt, arms, weights, holdout share, goal and revision
(`Audience.experiment_version`); readouts never pool versions.

Per comparison: the goal metric (conversion rate or revenue per customer), revenue and profit per
customer, each CUPED-adjusted with the customer's pre-assignment behaviour, with the always-valid
interval and p-value at the audience's significance level divided by its number of comparisons
(Bonferroni: the intervals hold together, and "significant" means exactly that the interval
excludes 0); the fixed-horizon figures stand beside them, labelled, for one-look use only.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging

import numpy as np
import pandas as pd

from ml.activation.bandit import nightly_weights, write_arm_weights
from ml.activation.money import offer_costs, profit, warn_missing_rates
from ml.activation.program import write_program_readout
from ml.activation.sequential import Comparison, Looks, compare_looks
from ml.activation.settings import CONTROL, ActivationConfig
from ml.warehouse.declared import column_names, ddl
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import ensure_table, existing_tables, replace_partition

log = logging.getLogger(__name__)

RESULTS = "marts.fct_experiment_results"
STATUS = "activation.audience_status"
AUDIT = "experiments.audit_log"
UNVERSIONED = "unversioned"  # assignments written before versions were recorded

# The tables' columns are declared in dbt_project/models/outputs/_python_outputs.yml.
RESULTS_DDL = ddl(RESULTS)
RESULT_COLUMNS = column_names(RESULTS)
STATUS_DDL = ddl(STATUS)
STATUS_COLUMNS = column_names(STATUS)
AUDIT_DDL = ddl(AUDIT)
AUDIT_COLUMNS = column_names(AUDIT)
# One row per exposed customer and version: what `readout` reads.
EXPOSURE_COLUMNS = [
    "audience",
    "experiment_version",
    "version_number",
    "customer_id",
    "experiment_group",
    "assigned_on",
    "ready_on",
    "goal_metric",
    "window_days",
    "converted",
    "revenue",
    "orders",
    "pre_goal",
    "pre_revenue",
    "contact_cost",
    "offer_code",
    "was_served",
    "policy_arm",
]


def _group_looks(version: pd.DataFrame, group: str, outcome: str, covariate: str) -> Looks:
    """One group's cumulative sums at each night a window ended in this version."""
    ready = version["ready_on"].to_numpy()
    chosen = (version["experiment_group"] == group).to_numpy()
    part = version[chosen]
    return Looks.accumulate(
        ready[chosen],
        np.unique(ready),
        part[outcome].to_numpy(dtype=float),
        part[covariate].to_numpy(dtype=float),
        part["converted"].to_numpy(dtype=bool),
    )


def _comparisons(groups: list[str], arm_order: list[str], by_uplift: bool = False) -> list[tuple[str, str]]:
    """(arm, baseline): every arm against control, then every pair of arms in config order. In a
    version an uplift policy decides, arms went to different customers by design: only each arm
    against the holdout of its own customers."""
    unknown = sorted(group for group in groups if group not in arm_order and group != CONTROL)
    arms = [arm for arm in arm_order if arm in groups] + unknown
    against_control = [(arm, CONTROL) for arm in arms] if CONTROL in groups else []
    if by_uplift:
        return against_control
    return against_control + [(second, first) for first, second in itertools.combinations(arms, 2)]


def comparable(version: pd.DataFrame, arm: str, baseline: str) -> pd.DataFrame:
    """The customers of one comparison. An uplift-decided customer's arm was chosen for them
    (policy_arm), the holdout at random within it: an arm is compared with the holdout of the customers
    it was chosen for, a randomized comparison within that stratum. Random-arm customers (policy_arm
    NULL) are all comparable."""
    if baseline != CONTROL or version["policy_arm"].isna().all():
        return version
    return version[version["policy_arm"].isna() | (version["policy_arm"] == arm)]


def _as_date(value) -> dt.date:
    return pd.Timestamp(value).date()


def with_defaults(exposures: pd.DataFrame, activation: ActivationConfig) -> pd.DataFrame:
    """Fill what a replay in a notebook may leave out: the version (as configured now), the goal and
    window (from the config), the night the window ends, and zero money and covariates."""
    missing = [c for c in ("audience", "customer_id", "experiment_group", "assigned_on") if c not in exposures]
    if missing or not {"converted", "revenue"} & set(exposures.columns):
        raise ValueError(
            f"exposures lack {missing or 'an outcome'}: give audience, customer_id, experiment_group, assigned_on "
            "and converted or revenue (the other columns of EXPOSURE_COLUMNS are optional)"
        )
    frame = exposures[exposures["audience"].isin(list(activation.audiences))].copy()
    per_audience = pd.DataFrame(
        [
            (name, audience.experiment_version(activation.salt), audience.goal.metric, audience.goal.window_days)
            for name, audience in activation.audiences.items()
        ],
        columns=["audience", "experiment_version", "goal_metric", "window_days"],
    ).set_index("audience")
    for column in ("experiment_version", "goal_metric", "window_days"):
        if column not in frame.columns:
            frame[column] = frame["audience"].map(per_audience[column])
    if "version_number" not in frame.columns:
        frame["version_number"] = 1
    if "ready_on" not in frame.columns:
        frame["ready_on"] = pd.to_datetime(frame["assigned_on"], cache=False) + pd.to_timedelta(
            frame["window_days"], unit="D"
        )
    if "revenue" not in frame.columns:
        frame["revenue"] = 0.0
    if "converted" not in frame.columns:
        frame["converted"] = frame["revenue"] > 0
    if "orders" not in frame.columns:
        frame["orders"] = frame["converted"].astype(int)
    for column in ("pre_goal", "pre_revenue", "contact_cost"):
        if column not in frame.columns:
            frame[column] = 0.0
    if "offer_code" not in frame.columns:
        frame["offer_code"] = None
    if "was_served" not in frame.columns:
        frame["was_served"] = False
    if "policy_arm" not in frame.columns:
        frame["policy_arm"] = None
    frame["ready_on"] = pd.to_datetime(frame["ready_on"], cache=False).astype("datetime64[ns]")
    return frame


def readout(exposures: pd.DataFrame, activation: ActivationConfig, ds: dt.date) -> pd.DataFrame:
    """The readout table of ds from one row per exposed customer and version (EXPOSURE_COLUMNS; a
    customer whose window has not ended by ds is left out). Pure: no warehouse, no clock, so a
    notebook can replay any night from exported exposures."""
    economics = activation.economics
    frame = with_defaults(exposures, activation)
    frame = frame[frame["ready_on"] <= pd.Timestamp(ds)].copy()
    frame["cost"] = frame["contact_cost"].astype(float) + offer_costs(
        frame["offer_code"], frame["revenue"], frame["orders"], economics
    )
    frame["profit"] = profit(frame["revenue"], frame["cost"], economics)
    rows = []
    for (name, version), mine in frame.groupby(["audience", "experiment_version"], sort=True):
        audience = activation.audiences.get(name)
        if audience is None:
            continue  # an audience no longer configured: its history stays in earlier partitions
        rows.extend(_version_rows(ds, name, version, mine, audience, activation))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _version_rows(
    ds: dt.date, name: str, version: str, mine: pd.DataFrame, audience, activation: ActivationConfig
) -> list[dict]:
    """The readout rows of one audience's experiment version: each arm against control and the others."""
    sequential = activation.sequential
    goal_metric = mine["goal_metric"].iloc[0]
    by_uplift = bool(mine["policy_arm"].notna().any())
    arm_names = [arm.name for arm in audience.arms()]
    comparisons = _comparisons(sorted(mine["experiment_group"].unique()), arm_names, by_uplift)
    alpha = audience.significance_level / max(len(comparisons), 1)

    def compared(arm: str, baseline: str, outcome: str, covariate: str) -> Comparison:
        both = comparable(mine, arm, baseline)
        return compare_looks(
            _group_looks(both, arm, outcome, covariate),
            _group_looks(both, baseline, outcome, covariate),
            alpha,
            sequential.planned_customers,
            sequential.min_outcomes_per_group,
        )

    rows = []
    for arm, baseline in comparisons:
        both = comparable(mine, arm, baseline)
        treated, base = both[both["experiment_group"] == arm], both[both["experiment_group"] == baseline]
        goal_outcome = "revenue" if goal_metric == "revenue" else "converted"
        goal = compared(arm, baseline, goal_outcome, "pre_revenue" if goal_metric == "revenue" else "pre_goal")
        significant = goal.p_value is not None and goal.p_value <= alpha
        rows.append(
            {
                "ds": ds,
                "audience": name,
                "experiment_version": version,
                "version_number": int(mine["version_number"].iloc[0]),
                "arm": arm,
                "baseline": baseline,
                "goal_metric": goal_metric,
                "window_days": int(mine["window_days"].iloc[0]),
                "first_assigned": _as_date(mine["assigned_on"].min()),
                "last_assigned": _as_date(mine["assigned_on"].max()),
                **_goal_fields(goal, treated, base, np.unique(both["ready_on"].to_numpy())),
                "significance_level": audience.significance_level,
                "comparisons": len(comparisons),
                "is_significant": bool(significant),
                **_money_fields(
                    compared(arm, baseline, "revenue", "pre_revenue"),
                    compared(arm, baseline, "profit", "pre_revenue"),
                    treated,
                    baseline,
                ),
                "hypothesis": audience.hypothesis,
                "null_hypothesis": audience.null_hypothesis,
                "conclusion": _conclusion(arm, baseline, goal, significant, activation),
            }
        )
    return rows


def _goal_fields(goal: Comparison, treated: pd.DataFrame, base: pd.DataFrame, look_dates: np.ndarray) -> dict:
    """The goal's comparison: counts, means, the always-valid and fixed-horizon figures."""
    since = goal.significant_since
    return {
        "looks": goal.looks,
        "baseline_customers": len(base),
        "arm_customers": len(treated),
        # Exposure beside the intention-to-treat figures (the unit stays the assigned customer).
        "baseline_served_customers": int(base["was_served"].sum()),
        "arm_served_customers": int(treated["was_served"].sum()),
        "baseline_conversions": int(base["converted"].sum()),
        "arm_conversions": int(treated["converted"].sum()),
        "baseline_value": goal.baseline_mean,
        "arm_value": goal.arm_mean,
        "effect": goal.effect,
        "relative_effect": goal.effect / goal.baseline_mean if goal.effect is not None and goal.baseline_mean else None,
        "ci_lower": goal.ci_lower,
        "ci_upper": goal.ci_upper,
        "p_value": goal.p_value,
        "fixed_horizon_ci_lower": goal.fixed_horizon_ci_lower,
        "fixed_horizon_ci_upper": goal.fixed_horizon_ci_upper,
        "fixed_horizon_p_value": goal.fixed_horizon_p_value,
        "variance_reduction": goal.variance_reduction,
        "significant_since": _as_date(look_dates[since]) if since is not None else None,
    }


def _money_fields(revenue: Comparison, gain: Comparison, treated: pd.DataFrame, baseline: str) -> dict:
    """Incremental revenue and profit per arm customer and in all, what the arm cost, and its ROI."""
    arm_cost = float(treated["cost"].sum())
    cost_per_customer = arm_cost / len(treated) if len(treated) else None
    # ROI = incremental profit / what the arm cost, per arm customer; the cost is what was
    # spent (observed), so the interval is the profit interval scaled by it.
    roi = {"roi": None, "roi_ci_lower": None, "roi_ci_upper": None}
    if baseline == CONTROL and cost_per_customer and gain.effect is not None:
        roi = {
            "roi": gain.effect / cost_per_customer,
            "roi_ci_lower": gain.ci_lower / cost_per_customer,
            "roi_ci_upper": gain.ci_upper / cost_per_customer,
        }
    return {
        "baseline_revenue_per_customer": revenue.baseline_mean,
        "arm_revenue_per_customer": revenue.arm_mean,
        "incremental_revenue_per_customer": revenue.effect,
        "incremental_revenue_ci_lower": revenue.ci_lower,
        "incremental_revenue_ci_upper": revenue.ci_upper,
        "incremental_revenue": revenue.effect * len(treated) if revenue.effect is not None else None,
        "incremental_profit_per_customer": gain.effect,
        "incremental_profit_ci_lower": gain.ci_lower,
        "incremental_profit_ci_upper": gain.ci_upper,
        "incremental_profit": gain.effect * len(treated) if gain.effect is not None else None,
        "cost_per_arm_customer": cost_per_customer,
        "arm_cost": arm_cost,
        **roi,
    }


def _conclusion(arm: str, baseline: str, goal: Comparison, significant: bool, activation: ActivationConfig) -> str:
    if goal.looks == 0:
        needed = activation.sequential.min_outcomes_per_group
        return f"waiting: each group needs {needed} converting and {needed} non-converting customers"
    if not significant:
        return "no evidence of a difference yet (keep running)"
    direction = "better" if goal.effect > 0 else "worse"
    return f"{arm} is {direction} than {baseline} (always-valid)"


EXPOSURES = "intermediate.int_experiment_exposures"  # dbt_project/models/experiments


def exposures(ds: dt.date, activation: ActivationConfig) -> pd.DataFrame:
    """One row per customer and experiment version whose goal window has ended by the end of ds
    (EXPOSURE_COLUMNS): the dbt model read_experiments builds for ds first (ml.warehouse.transform.
    build_experiment_inputs), from experiments.assignments and the warehouse (data up to ds only)."""
    if not activation.audiences:
        return pd.DataFrame(columns=EXPOSURE_COLUMNS)
    with open_warehouse() as connection:
        warn_missing_rates(connection, activation.economics)
        return connection.execute(
            f"select {', '.join(EXPOSURE_COLUMNS)} from {EXPOSURES} order by audience, experiment_version, customer_id"
        ).df()


def feedback(
    results: pd.DataFrame, activation: ActivationConfig, ds: dt.date, previous: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each audience's status for the next decisions (active, paused, winner_shipped) and the
    automated actions of this night, with their evidence. `previous`: the latest earlier status row
    of each audience (STATUS_COLUMNS), which tells a new action from one already taken."""
    statuses, actions = [], []
    earlier = previous.set_index("audience") if not previous.empty else pd.DataFrame(columns=STATUS_COLUMNS[1:])
    for name, audience in activation.audiences.items():
        base = audience.experiment_version(activation.salt)
        mine = results[results["audience"] == name] if not results.empty else results
        winner, winner_evidence = (None, "")
        if len(mine):
            winner, winner_evidence = _winner(mine[mine["experiment_version"] == base], audience)
        shipped = winner if activation.ship_winning_arm else None
        current = audience.experiment_version(activation.salt, shipped)
        # The customers an uplift policy decides are a version of their own: harm there pauses too.
        versions = {base, current} | {audience.experiment_version(activation.salt, s, True) for s in (None, shipped)}
        served = {arm.name for arm in audience.served_arms(shipped)}
        harm = (
            mine[
                mine["experiment_version"].isin(versions)
                & mine["arm"].isin(served)
                & (mine["baseline"] == CONTROL)
                & mine["is_significant"]
                & (mine["effect"] < 0)
            ]
            if len(mine)
            else mine
        )
        status, reason = "active", None
        if activation.pause_on_significant_negative_lift and len(harm):
            status, reason = "paused", _evidence(harm.iloc[0])
        elif shipped:
            status, reason = "winner_shipped", winner_evidence
        statuses.append(
            {
                "ds": ds,
                "audience": name,
                "status": status,
                "reason": reason,
                "experiment_version": current,
                "base_version": base,
                "shipped_arm": shipped,
            }
        )
        before = earlier.loc[name] if name in earlier.index else None
        was_paused = before is not None and before["status"] == "paused"
        if status == "paused" and not (was_paused and before["base_version"] == base):
            actions.append((name, "paused", current, harm.iloc[0]["arm"], reason))
        if status == "winner_shipped" and not (
            before is not None and before["status"] == "winner_shipped" and before["base_version"] == base
        ):
            actions.append((name, "winner_shipped", current, shipped, reason))
        if status != "paused" and was_paused and before["base_version"] != base:
            evidence = f"the configuration changed (version {before['experiment_version']} -> {current}): a new version"
            actions.append((name, "resumed", current, None, evidence))
    audit = pd.DataFrame([(ds, *action) for action in actions], columns=AUDIT_COLUMNS)
    return pd.DataFrame(statuses, columns=STATUS_COLUMNS), audit


def _evidence(row) -> str:
    unit = "" if row["goal_metric"] == "revenue" else " pts"
    scale = 1 if row["goal_metric"] == "revenue" else 100
    return (
        f"{row['arm']} against {row['baseline']}: {row['goal_metric']} {row['effect'] * scale:+.2f}{unit} "
        f"(always-valid {1 - row['significance_level']:.0%} interval {row['ci_lower'] * scale:+.2f} to "
        f"{row['ci_upper'] * scale:+.2f}, p = {row['p_value']:.3g} <= {row['significance_level']:g}/"
        f"{row['comparisons']}), {row['arm_customers']} against {row['baseline_customers']} customers, "
        f"version {row['experiment_version']}, significant since {row['significant_since']}"
    )


def _winner(rows: pd.DataFrame, audience) -> tuple[str | None, str]:
    """The arm significantly better than control and than every other arm (audiences with 2+ arms)."""
    arms = [arm.name for arm in audience.arms()]
    if len(arms) < 2 or rows.empty:
        return None, ""
    for arm in arms:
        beaten = set()
        for row in rows.itertuples():
            if not row.is_significant:
                continue
            if row.arm == arm and row.effect > 0:
                beaten.add(row.baseline)
            elif row.baseline == arm and row.effect < 0:
                beaten.add(row.arm)
        if beaten >= {CONTROL, *(other for other in arms if other != arm)}:
            best = rows[(rows["arm"] == arm) & (rows["baseline"] == CONTROL)]
            return arm, _evidence(best.iloc[0]) + f"; better than {', '.join(sorted(beaten - {CONTROL}))} too"
    return None, ""


def _status_rows(where: str, ds: dt.date) -> pd.DataFrame:
    """Rows of activation.audience_status (STATUS_COLUMNS); none before the first readout."""
    with open_warehouse() as connection:
        if "audience_status" not in existing_tables(connection, "activation"):
            return pd.DataFrame(columns=STATUS_COLUMNS)
        ensure_table(connection, STATUS_DDL)  # an older warehouse: the version columns
        return connection.execute(f"select * from {STATUS} where {where}", [ds]).df()[STATUS_COLUMNS]


def read_feedback(ds: dt.date, activation: ActivationConfig) -> tuple[set[str], dict[str, str]]:
    """Paused audiences and shipped winners for the decisions of ds (set by read_experiments of ds),
    for the version configured now: a changed configuration is a new version and starts active."""
    paused, shipped = set(), {}
    for row in _status_rows("ds = ?", ds).itertuples():
        audience = activation.audiences.get(row.audience)
        if audience is None or row.base_version != audience.experiment_version(activation.salt):
            continue
        if row.status == "paused":
            paused.add(row.audience)
        if isinstance(row.shipped_arm, str):
            shipped[row.audience] = row.shipped_arm
    return paused, shipped


def previous_status(ds: dt.date) -> pd.DataFrame:
    """Each audience's latest status before ds."""
    return _status_rows("ds < ? qualify ds = max(ds) over (partition by audience)", ds)


def read_experiments(ds: dt.date, activation: ActivationConfig) -> dict[str, object]:
    """Replace the ds partitions of marts.fct_experiment_results, activation.audience_status,
    experiments.audit_log and marts.fct_program_readout."""
    exposed = exposures(ds, activation)
    results = readout(exposed, activation, ds)
    weights = nightly_weights(with_defaults(exposed, activation), activation, ds)
    write_arm_weights(ds, weights)
    status, audit = feedback(results, activation, ds, previous_status(ds))
    replace_partition(
        RESULTS, RESULTS_DDL, ds, results, order_by="audience, version_number, arm, baseline", purge_erased=False
    )
    replace_partition(STATUS, STATUS_DDL, ds, status, order_by="audience", purge_erased=False)
    replace_partition(AUDIT, AUDIT_DDL, ds, audit, order_by="audience, action", purge_erased=False)
    program = write_program_readout(ds, activation)
    for row in audit.itertuples():
        log.warning("ds=%s audience %s %s: %s", ds, row.audience, row.action.replace("_", " "), row.evidence)
    read = results[results["looks"] > 0] if not results.empty else results
    significant = int(read["is_significant"].sum()) if len(read) else 0
    log.info("ds=%s experiment readouts: %d comparisons with data, %d significant", ds, len(read), significant)
    return {
        "comparisons_read": len(read),
        "significant": significant,
        "paused": sorted(status.loc[status["status"] == "paused", "audience"]),
        "actions": len(audit),
        "program_profit_per_customer": program,
        "arm_weights": {f"{r.audience}/{r.arm}": round(r.weight, 3) for r in weights.itertuples()},
    }
