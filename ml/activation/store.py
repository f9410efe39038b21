"""The tables of the decisions: activation.decisions, experiments.assignments, experiments.versions,
activation.audience_funnel."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pandas as pd

from ml.activation.decisions import DecisionSet, decide, why_empty
from ml.activation.population import read_contact_history, read_population
from ml.activation.readout import read_feedback
from ml.activation.settings import ActivationConfig
from ml.config import load_config
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import ensure_table, existing_tables, replace_partition, replace_table

log = logging.getLogger(__name__)

DECISIONS = "activation.decisions"
ASSIGNMENTS = "experiments.assignments"
VERSIONS = "experiments.versions"
FUNNEL = "activation.audience_funnel"

DECISIONS_DDL = f"""
create schema if not exists activation;
create table if not exists {DECISIONS} (
    ds date not null,
    customer_id varchar not null,
    decision varchar not null,        -- audience or default_experience
    audience varchar,
    experiment_group varchar,
    channels varchar[],
    reason varchar not null           -- decided, too_little_data or no_audience
)
"""
ASSIGNMENTS_DDL = f"""
create schema if not exists experiments;
create table if not exists {ASSIGNMENTS} (
    ds date not null,
    audience varchar not null,
    customer_id varchar not null,
    experiment_group varchar not null, -- control (the holdout, never exported) or the arm
    bucket double not null,            -- sha256(salt|audience|customer) in [0, 1): stable across days
    salt varchar not null,
    channels varchar[] not null,       -- where the customer is (treated) or would have been (control) reached
    experiment_version varchar,        -- experiments.versions: readouts never pool versions
    offer_code varchar                 -- the arm's offer (its cost is in activation.economics.offers)
);
alter table {ASSIGNMENTS} add column if not exists experiment_version varchar;
alter table {ASSIGNMENTS} add column if not exists offer_code varchar
"""
VERSIONS_DDL = f"""
create schema if not exists experiments;
create table if not exists {VERSIONS} (
    audience varchar not null,
    experiment_version varchar not null, -- sha256 of the definition (first 12 hex digits)
    goal_metric varchar not null,
    window_days integer not null,
    definition json not null,            -- salt, arms with weights and tactics, holdout, goal, revision
    first_ds date,                       -- the first and last nights it was configured
    last_ds date,
    primary key (audience, experiment_version)
);
alter table {VERSIONS} add column if not exists first_ds date;
alter table {VERSIONS} add column if not exists last_ds date
"""
FUNNEL_DDL = f"""
create schema if not exists activation;
create table if not exists {FUNNEL} (
    ds date not null,
    audience varchar not null,
    step_order integer not null,
    step varchar not null,
    customers bigint not null
)
"""


def write_versions(activation: ActivationConfig, shipped: dict[str, str], ds: dt.date) -> None:
    """Record each audience's experiment version as configured tonight, and widen the nights it ran
    to include ds (kept once per version, so the readouts of a version that ended know its goal)."""
    rows = [
        (
            name,
            audience.experiment_version(activation.salt, shipped.get(name)),
            audience.goal.metric,
            audience.goal.window_days,
            json.dumps(audience.experiment_definition(activation.salt, shipped.get(name)), sort_keys=True),
        )
        for name, audience in activation.audiences.items()
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


def decide_audiences(ds: str) -> dict[str, object]:
    """The day's decision for every customer (one audience or the default experience), the holdout
    and arm assignments, and the funnel of every audience; replaces the ds partitions."""
    ds_date = dt.date.fromisoformat(ds)
    activation = load_config().activation
    population = read_population(ds_date)
    history = read_contact_history(ds_date, activation)
    paused, shipped = read_feedback(ds_date, activation)  # set by read_experiments for this ds
    result = decide(population, history, activation, ds_date, frozenset(paused), shipped)
    salts = {name: audience.salt or activation.salt for name, audience in activation.audiences.items()}
    write_versions(activation, shipped, ds_date)
    write_decisions(ds_date, result, salts)
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
    }


def read_funnel(ds: dt.date) -> pd.DataFrame:
    """Every audience's funnel of ds (no rows when decide_audiences has not run for it)."""
    with open_warehouse() as connection:
        if "audience_funnel" not in existing_tables(connection, "activation"):
            return pd.DataFrame(columns=["audience", "step_order", "step", "customers"])
        return connection.execute(f"select * from {FUNNEL} where ds = ? order by audience, step_order", [ds]).df()


def read_assignments(ds: dt.date) -> pd.DataFrame:
    with open_warehouse() as connection:
        return connection.execute(f"select * from {ASSIGNMENTS} where ds = ? order by audience, customer_id", [ds]).df()
