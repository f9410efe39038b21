"""What a customer's outcome is worth: profit = margin share x revenue - contact costs - offer costs.

Revenue is the completed orders' `total_amount` (cancelled and refunded orders count nothing),
converted to the reporting currency with `activation.economics.exchange_rates`. An
offer costs its discount share of the order value plus its fixed cost per order, on the orders the
treated customer placed while it applied; a contact costs the channel's cost per contact. Control
customers are never contacted and get no offer, so they cost nothing. The figures come from
`activation.economics`; this module is the one place that combines them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.activation.settings import Economics


def offer_costs(offer_codes: pd.Series, revenue: pd.Series, orders: pd.Series, economics: Economics) -> np.ndarray:
    """Per row: the cost of the row's offer on `orders` orders worth `revenue` (0 without an offer)."""
    discount = offer_codes.map(lambda code: economics.offers[code].discount_share if code in economics.offers else 0.0)
    per_order = offer_codes.map(lambda code: economics.offers[code].cost_per_order if code in economics.offers else 0.0)
    return (discount.astype(float) * revenue.astype(float) + per_order.astype(float) * orders.astype(float)).to_numpy()


# Completed orders in the reporting currency (`exchange_rates` and `contact_costs` are registered by
# register_economics); the one definition of revenue the readouts use.
COMPLETED_ORDERS_SQL = """
    select o.customer_id, o.order_id, o.ordered_at, o.total_amount * r.rate as total_amount
    from intermediate.int_orders_sequenced as o
    inner join exchange_rates as r using (currency)
    where o.is_completed
"""


class MissingExchangeRateError(ValueError):
    """Completed orders in a currency that activation.economics.exchange_rates does not convert."""


def register_economics(connection, economics: Economics, channels: list[str]) -> None:
    """Register `exchange_rates` (currency, rate) and `contact_costs` (channel, cost) on the connection;
    refuse orders in a currency without a rate, naming it and the key to set."""
    rates = {economics.currency: 1.0, **economics.exchange_rates}
    connection.register("exchange_rates", pd.DataFrame({"currency": list(rates), "rate": list(rates.values())}))
    costs = [float(economics.contact_cost.get(channel, 0.0)) for channel in channels]
    connection.register("contact_costs", pd.DataFrame({"channel": channels, "cost": costs}))
    missing = connection.execute(
        "select currency, count(*) from intermediate.int_orders_sequenced where is_completed "
        "and currency not in (select currency from exchange_rates) group by all order by all"
    ).fetchall()
    if missing:
        found = ", ".join(f"{currency} ({orders} orders)" for currency, orders in missing)
        raise MissingExchangeRateError(
            f"completed orders in {found} cannot be converted to {economics.currency}: set "
            f"activation.economics.exchange_rates.<currency> (units of {economics.currency} per unit) in the config"
        )


def profit(revenue: np.ndarray, costs: np.ndarray, economics: Economics) -> np.ndarray:
    return economics.margin_share * np.asarray(revenue, dtype=float) - np.asarray(costs, dtype=float)
