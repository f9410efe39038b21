"""The program readout: what personalization as a whole earned, net, over the last N days.

Everyone outside the global holdout (`activation.global_holdout`) against the holdout, who got the
default experience everywhere: revenue and profit per customer over the last `readout_days` days up
to ds, CUPED-adjusted with each customer's revenue in the N days before, with the always-valid
interval of ml/activation/sequential.py (the readout is read every night) and the fixed-horizon one
beside it. Profit counts the contact and offer costs of every audience (ml/activation/money.py).

The holdout is a hash of the customer id with its own salt, independent of every audience and of
the customer's history, so the two groups differ only by chance and by what the platform did.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from ml.activation.decisions import in_global_holdout
from ml.activation.money import COMPLETED_ORDERS_SQL, offer_costs, profit, register_economics
from ml.activation.sequential import Looks, compare_looks
from ml.activation.settings import ActivationConfig
from ml.warehouse.declared import ddl
from ml.warehouse.dialect import sql_type, unnested
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import existing_tables, replace_partition

log = logging.getLogger(__name__)

PROGRAM = "marts.fct_program_readout"
SIGNIFICANCE_LEVEL = 0.05
PROGRAM_DDL = ddl(PROGRAM)  # declared in dbt_project/models/outputs/_python_outputs.yml


# Per customer of customer_360 at $ds: revenue and orders in the readout window, revenue before it,
# and what contacting them cost.
PROGRAM_CUSTOMERS_SQL = """
with treated as ({assignments}),
orders as (
    select customer_id, ordered_at, cast(ordered_at as date) as order_date, total_amount
    from ({completed_orders})
    where ordered_at < cast($ds + 1 as timestamp) and ordered_at >= cast($start - $days as timestamp)
),
revenue as (
    select customer_id,
        sum(total_amount) filter (where order_date >= $start) as revenue,
        count(*) filter (where order_date >= $start) as orders,
        sum(total_amount) filter (where order_date < $start) as pre_revenue
    from orders group by customer_id
),
contacts as (
    select t.customer_id, sum(c.cost) as contact_cost
    from treated as t cross join lateral {channels_unnested} as contacted
    inner join contact_costs as c on c.channel = contacted.channel
    group by t.customer_id
)
select c.customer_id, coalesce(r.revenue, 0) as revenue, coalesce(r.orders, 0) as orders,
    coalesce(r.pre_revenue, 0) as pre_revenue, coalesce(k.contact_cost, 0) as contact_cost
from marts.customer_360 as c
left join revenue as r using (customer_id)
left join contacts as k using (customer_id)
where c.ds = $ds
order by c.customer_id
"""
# An offer applies to the orders its treated customer placed within the audience's goal window.
OFFERED_ORDERS_SQL = """
with treated as ({assignments}),
offer_windows as (
    select t.customer_id, t.offer_code, t.ds as assigned_on, w.window_days
    from treated as t inner join goal_windows as w using (audience)
    where t.offer_code is not null
),
offered_orders as (
    select o.customer_id, o.order_id, o.total_amount, min_by(w.offer_code, w.assigned_on) as offer_code
    from ({completed_orders}) as o
    inner join offer_windows as w
        on w.customer_id = o.customer_id
        and o.ordered_at >= cast(w.assigned_on + 1 as timestamp)
        and o.ordered_at < cast(w.assigned_on + 1 + w.window_days as timestamp)
    where o.ordered_at >= cast($start as timestamp)
        and o.ordered_at < cast($ds + 1 as timestamp)
    group by all
)
select customer_id, offer_code, sum(total_amount) as revenue, count(*) as orders
from offered_orders group by all order by all
"""


def program_outcomes(ds: dt.date, activation: ActivationConfig) -> pd.DataFrame:
    """Per customer of customer_360 at ds: revenue, orders and costs in the window, revenue before it."""
    days = activation.global_holdout.readout_days
    window_start = ds - dt.timedelta(days=days - 1)
    with open_warehouse() as connection:
        has_assignments = "assignments" in existing_tables(connection, "experiments")
        register_economics(connection, activation.economics, list(activation.channels))
        windows = pd.DataFrame(
            [(name, audience.goal.window_days) for name, audience in activation.audiences.items()],
            columns=["audience", "window_days"],
        ).astype({"window_days": "int32"})
        connection.register("goal_windows", windows)
        assignments = (
            # Decisions of the day before the window to the day before ds act on the window's days (the
            # decisions of ds itself are written after this readout and act on tomorrow).
            "select * from experiments.assignments "
            "where ds >= $start - 1 and ds < $ds and experiment_group <> 'control'"
            if has_assignments
            else "select cast(null as date) as ds, cast(null as string) as audience, cast(null as string) as "
            f"customer_id, cast(null as {sql_type(connection, 'varchar[]')}) as channels, cast(null as string) as "
            "offer_code where false"
        )
        customers = connection.execute(
            PROGRAM_CUSTOMERS_SQL.format(
                assignments=assignments,
                completed_orders=COMPLETED_ORDERS_SQL,
                channels_unnested=unnested(connection, "t.channels", "channel"),
            ),
            {"ds": ds, "start": window_start, "days": days},
        ).df()
        offered = connection.execute(
            OFFERED_ORDERS_SQL.format(assignments=assignments, completed_orders=COMPLETED_ORDERS_SQL),
            {"ds": ds, "start": window_start},
        ).df()
    return with_costs(customers, offered, activation)


def with_costs(customers: pd.DataFrame, offered: pd.DataFrame, activation: ActivationConfig) -> pd.DataFrame:
    """Each customer's cost (contacts and the offers their orders used), profit, and holdout membership."""
    offered["offer_cost"] = offer_costs(
        offered["offer_code"], offered["revenue"], offered["orders"], activation.economics
    )
    offer_cost = offered.groupby("customer_id")["offer_cost"].sum()
    customers["cost"] = customers["contact_cost"] + customers["customer_id"].map(offer_cost).fillna(0.0)
    customers["profit"] = profit(customers["revenue"], customers["cost"], activation.economics)
    customers["held_out"] = in_global_holdout(customers["customer_id"], activation.global_holdout)
    return customers


def program_readout(customers: pd.DataFrame, activation: ActivationConfig, ds: dt.date) -> pd.DataFrame:
    """One row: the personalized customers against the global holdout (pure, from program_outcomes)."""
    settings, economics = activation.global_holdout, activation.economics
    held = customers["held_out"].to_numpy(bool)
    look = np.array([np.datetime64(ds)])
    ready = np.full(len(customers), np.datetime64(ds))
    converted = customers["orders"].to_numpy() > 0
    pre = customers["pre_revenue"].to_numpy(float)

    def compared(column: str):
        values = customers[column].to_numpy(float)
        return compare_looks(
            Looks.accumulate(ready[~held], look, values[~held], pre[~held], converted[~held]),
            Looks.accumulate(ready[held], look, values[held], pre[held], converted[held]),
            SIGNIFICANCE_LEVEL,
            activation.sequential.planned_customers,
            activation.sequential.min_outcomes_per_group,
        )

    revenue, gain = compared("revenue"), compared("profit")
    personalized = int((~held).sum())
    cost = float(customers.loc[~held, "cost"].sum()) / personalized if personalized else None
    if gain.looks == 0:
        conclusion = f"waiting: each group needs {activation.sequential.min_outcomes_per_group} buyers and non-buyers"
    elif gain.ci_lower > 0:
        conclusion = "personalization earned more than it cost (always-valid)"
    elif gain.ci_upper < 0:
        conclusion = "personalization cost more than it earned (always-valid)"
    else:
        conclusion = "no evidence of a net difference yet"
    return pd.DataFrame(
        [
            {
                "ds": ds,
                "window_start": ds - dt.timedelta(days=settings.readout_days - 1),
                "window_end": ds,
                "currency": economics.currency,
                "holdout_percent": settings.percent,
                "holdout_customers": int(held.sum()),
                "personalized_customers": personalized,
                "holdout_revenue_per_customer": revenue.baseline_mean,
                "personalized_revenue_per_customer": revenue.arm_mean,
                "incremental_revenue_per_customer": revenue.effect,
                "incremental_revenue_ci_lower": revenue.ci_lower,
                "incremental_revenue_ci_upper": revenue.ci_upper,
                "holdout_profit_per_customer": gain.baseline_mean,
                "personalized_profit_per_customer": gain.arm_mean,
                "incremental_profit_per_customer": gain.effect,
                "incremental_profit_ci_lower": gain.ci_lower,
                "incremental_profit_ci_upper": gain.ci_upper,
                "fixed_horizon_profit_ci_lower": gain.fixed_horizon_ci_lower,
                "fixed_horizon_profit_ci_upper": gain.fixed_horizon_ci_upper,
                "incremental_profit": gain.effect * personalized if gain.effect is not None else None,
                "cost_per_personalized_customer": cost,
                "roi": gain.effect / cost if cost and gain.effect is not None else None,
                "variance_reduction": gain.variance_reduction,
                "significance_level": SIGNIFICANCE_LEVEL,
                "conclusion": conclusion,
            }
        ]
    )


def write_program_readout(ds: dt.date, activation: ActivationConfig) -> float | None:
    """Replace the ds partition of marts.fct_program_readout; the incremental profit per customer."""
    if activation.global_holdout.percent == 0:
        log.warning(
            "ds=%s no program readout: there is no global holdout; set activation.global_holdout.percent "
            "(for example 5) to measure what personalization earns as a whole",
            ds,
        )
        replace_partition(PROGRAM, PROGRAM_DDL, ds, pd.DataFrame(), order_by="ds", purge_erased=False)
        return None
    row = program_readout(program_outcomes(ds, activation), activation, ds)
    replace_partition(PROGRAM, PROGRAM_DDL, ds, row, order_by="ds", purge_erased=False)
    value = row["incremental_profit_per_customer"].iloc[0]
    log.info("ds=%s program readout: %s", ds, row["conclusion"].iloc[0])
    return None if pd.isna(value) else float(value)
