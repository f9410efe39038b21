"""What a customer's outcome is worth: profit = margin share x revenue - contact costs - offer costs.

Revenue is the completed orders' `total_amount` (cancelled and refunded orders count nothing),
converted to the reporting currency with `activation.economics.exchange_rates`. An
offer costs its discount share of the order value plus its fixed cost per order, on the orders the
treated customer placed while it applied; a contact costs the channel's cost per contact. Control
customers are never contacted and get no offer, so they cost nothing. The figures come from
`activation.economics`; this module is the one place that combines them.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ml.activation.settings import Economics

log = logging.getLogger(__name__)


def offer_costs(offer_codes: pd.Series, revenue: pd.Series, orders: pd.Series, economics: Economics) -> np.ndarray:
    """Per row: the cost of the row's offer on `orders` orders worth `revenue` (0 without an offer)."""
    discount = offer_codes.map(lambda code: economics.offers[code].discount_share if code in economics.offers else 0.0)
    per_order = offer_codes.map(lambda code: economics.offers[code].cost_per_order if code in economics.offers else 0.0)
    return (discount.astype(float) * revenue.astype(float) + per_order.astype(float) * orders.astype(float)).to_numpy()


def warn_missing_rates(connection, economics: Economics) -> None:
    """Warn, naming the currencies and the key to set, when completed orders are in a currency without
    a rate: they count as orders and conversions, with no value (dbt's int_completed_orders, the one
    definition of revenue the readouts use, converts with the same rates)."""
    known = [economics.currency, *economics.exchange_rates]
    missing = connection.execute(
        "select currency, count(*) from intermediate.int_orders_sequenced where is_completed "
        f"and currency not in ({', '.join('?' for _ in known)}) group by all order by all",
        known,
    ).fetchall()
    if missing:
        found = ", ".join(f"{currency} ({orders} orders)" for currency, orders in missing)
        log.warning(
            "completed orders in %s have no exchange rate to %s: they count as orders and conversions, not as "
            "revenue or profit; set activation.economics.exchange_rates.<currency> (units of %s per unit)",
            found,
            economics.currency,
            economics.currency,
        )


def profit(revenue: np.ndarray, costs: np.ndarray, economics: Economics) -> np.ndarray:
    return economics.margin_share * np.asarray(revenue, dtype=float) - np.asarray(costs, dtype=float)
