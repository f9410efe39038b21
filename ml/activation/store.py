"""The tables of the decisions: activation.decisions, experiments.assignments, experiments.versions,
activation.audience_funnel."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pandas as pd

from ml.activation.bandit import ARM_WEIGHTS
from ml.activation.decisions import Allocation, DecisionSet, decide, why_empty
from ml.activation.population import read_contact_history, read_population
from ml.activation.readout import read_feedback
from ml.activation.settings import ActivationConfig
from ml.activation.targeting import UPLIFT, read_uplift_policy
from ml.constants import CUSTOMER_ID
from ml.warehouse.declared import ddl
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import ensure_table, existing_tables, replace_partition, replace_table

log = logging.getLogger(__name__)

DECISIONS = "activation.decisions"
ASSIGNMENTS = "experiments.assignments"
VERSIONS = "experiments.versions"
FUNNEL = "activation.audience_funnel"

# The tables' columns are declared in dbt_project/models/outputs/_python_outputs.yml.
DECISIONS_DDL = ddl(DECISIONS)
ASSIGNMENTS_DDL = ddl(ASSIGNMENTS)
VERSIONS_DDL = ddl(VERSIONS)
FUNNEL_DDL = ddl(FUNNEL)


def write_versions(
    activation: ActivationConfig, shipped: dict[str, str], ds: dt.date, by_uplift: frozenset[str] = frozenset()
) -> None:
    """Record each audience's experiment version as configured tonight (and, for the audiences in
    `by_uplift`, the version of the customers an uplift policy decided), and widen the nights it ran
    to include ds (kept once per version, so the readouts of a version that ended know its goal)."""
    rows = [
        (
            name,
            audience.experiment_version(activation.salt, shipped.get(name), uplift),
            audience.goal.metric,
            audience.goal.window_days,
            json.dumps(audience.experiment_definition(activation.salt, shipped.get(name), uplift), sort_keys=True),
        )
        for name, audience in activation.audiences.items()
        for uplift in ((False, True) if name in by_uplift else (False,))
    ]
    columns = ["audience", "experiment_version", "goal_metric", "window_days", "definition", "first_ds", "last_ds"]
    with open_warehouse() as connection:
        ensure_table(connection, VERSIONS_DDL)
        known = connection.execute(f"select {', '.join(columns)} from {VERSIONS}").fetchall()
    versions = {(row[0], row[1]): list(row) for row in known}
    for row in rows:
        version = versions.setdefault(row[:2], [*row, ds, ds])
        version[5] = min(version[5] or ds, ds)
        version[6] = max(version[6] or ds, ds)
    replace_table(VERSIONS, VERSIONS_DDL, pd.DataFrame(sorted(versions.values()), columns=columns))


def write_decisions(ds: dt.date, result: DecisionSet, salts: dict[str, str]) -> None:
    decisions = result.decisions.assign(ds=ds)
    assignments = result.assignments.assign(ds=ds, salt=result.assignments["audience"].map(salts))
    replace_partition(DECISIONS, DECISIONS_DDL, ds, decisions, order_by="customer_id")
    replace_partition(ASSIGNMENTS, ASSIGNMENTS_DDL, ds, assignments, order_by="audience, customer_id")
    replace_partition(
        FUNNEL, FUNNEL_DDL, ds, result.funnel.assign(ds=ds), order_by="audience, step_order", purge_erased=False
    )


def decide_audiences(ds: dt.date, activation: ActivationConfig, exploration_percent: float) -> dict[str, object]:
    """The day's decision for every customer (one audience or the default experience), the holdout
    and arm assignments, and the funnel of every audience; replaces the ds partitions. Audiences whose
    uplift model serves (marts.customer_uplift) decide by expected incremental profit, but for the
    `exploration_percent` share that keeps the rules (ml.activation.targeting)."""
    population = read_population(ds)
    history = read_contact_history(ds, activation)
    paused, shipped = read_feedback(ds, activation)  # set by read_experiments for this ds
    uplift = read_uplift_policy(ds, exploration_percent, activation.salt)
    allocations = read_allocations(ds, activation, shipped)
    result = decide(population, history, activation, ds, frozenset(paused), shipped, uplift, allocations)
    salts = {name: audience.salt or activation.salt for name, audience in activation.audiences.items()}
    by_uplift = frozenset(result.assignments.loc[result.assignments["decided_by"] == UPLIFT, "audience"])
    write_versions(activation, shipped, ds, by_uplift)
    write_decisions(ds, result, salts)
    groups = result.assignments.groupby(["audience", "experiment_group"]).size()
    log.info(
        "ds=%s decisions for %d customers: %d in audiences, groups %s",
        ds,
        len(result.decisions),
        len(result.assignments),
        groups.to_dict(),
    )
    empty = {name: why_empty(result.funnel, name) for name in activation.audiences}
    for name, reason in empty.items():
        if reason:
            log.info("ds=%s audience %s is empty tonight: %s", ds, name, reason)
    return {
        "customers": len(result.decisions),
        "decided": len(result.assignments),
        "empty_audiences": {name: reason for name, reason in empty.items() if reason},
        **result.decisions["reason"].value_counts().rename(lambda reason: f"customers_{reason}").to_dict(),
        "decided_by": result.assignments["decided_by"].value_counts().to_dict(),
    }


STICKY_COLUMNS = ["audience", "experiment_version", CUSTOMER_ID, "policy_arm", "assignment_probability"]


def read_allocations(ds: dt.date, activation: ActivationConfig, shipped: dict[str, str]) -> dict[str, Allocation]:
    """Per thompson audience not shipped: tonight's shares (experiments.arm_weights of ds, written by
    read_experiments; the configured weights before any) and each customer's arm so far in the version."""
    adaptive = {
        name: audience.experiment_version(activation.salt)
        for name, audience in activation.audiences.items()
        if audience.allocation == "thompson" and name not in shipped
    }
    if not adaptive:
        return {}
    with open_warehouse() as connection:
        tables = existing_tables(connection, "experiments")
        weights = (
            connection.execute(
                f"select audience, arm, weight from {ARM_WEIGHTS} where ds = ? order by audience, arm", [ds]
            ).df()
            if "arm_weights" in tables
            else pd.DataFrame(columns=["audience", "arm", "weight"])
        )
        sticky = (
            connection.execute(
                "select audience, experiment_version, customer_id, min_by(policy_arm, ds) as policy_arm, "
                f"min_by(assignment_probability, ds) as assignment_probability from {ASSIGNMENTS} "
                "where ds < ? and policy_arm is not null and decided_by <> 'uplift' group by all",
                [ds],
            ).df()
            if "assignments" in tables
            else pd.DataFrame(columns=STICKY_COLUMNS)
        )
    allocations = {}
    for name, version in adaptive.items():
        audience = activation.audiences[name]
        mine = weights[weights["audience"] == name].set_index("arm")["weight"].to_dict()
        configured = {arm.name: arm.weight for arm in audience.arms()}
        kept = sticky[(sticky["audience"] == name) & (sticky["experiment_version"] == version)]
        allocations[name] = Allocation(mine or configured, kept.reset_index(drop=True))
    return allocations


def upgrade_assignments() -> None:
    """Add the columns a newer release declares to an older warehouse's experiments.assignments, so the
    readouts' inputs (dbt, models/experiments) can select them before tonight's decisions write any."""
    with open_warehouse() as connection:
        if "assignments" in existing_tables(connection, "experiments"):
            ensure_table(connection, ASSIGNMENTS_DDL)


def read_funnel(ds: dt.date) -> pd.DataFrame:
    """Every audience's funnel of ds (no rows when decide_audiences has not run for it)."""
    with open_warehouse() as connection:
        if "audience_funnel" not in existing_tables(connection, "activation"):
            return pd.DataFrame(columns=["audience", "step_order", "step", "customers"])
        return connection.execute(f"select * from {FUNNEL} where ds = ? order by audience, step_order", [ds]).df()


def read_assignments(ds: dt.date) -> pd.DataFrame:
    with open_warehouse() as connection:
        return connection.execute(f"select * from {ASSIGNMENTS} where ds = ? order by audience, customer_id", [ds]).df()
