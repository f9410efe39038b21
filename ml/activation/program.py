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
from ml.activation.money import offer_costs, profit
from ml.activation.sequential import Looks, compare_looks
from ml.activation.settings import ActivationConfig
from ml.warehouse.declared import ddl
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import replace_partition

log = logging.getLogger(__name__)

PROGRAM = "marts.fct_program_readout"
SIGNIFICANCE_LEVEL = 0.05
PROGRAM_DDL = ddl(PROGRAM)  # declared in dbt_project/models/outputs/_python_outputs.yml


# What dbt builds for read_experiments' ds first (dbt_project/models/experiments).
PROGRAM_CUSTOMERS = "intermediate.int_program_customers"
OFFERED_ORDERS = "intermediate.int_program_offered_orders"


def program_outcomes(ds: dt.date, activation: ActivationConfig) -> pd.DataFrame:
    """Per customer of customer_360 at ds: revenue, orders and costs in the window, revenue before it."""
    with open_warehouse() as connection:
        customers = connection.execute(f"select * from {PROGRAM_CUSTOMERS} order by customer_id").df()
        offered = connection.execute(f"select * from {OFFERED_ORDERS} order by all").df()
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
