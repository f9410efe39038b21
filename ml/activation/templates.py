"""What an e-mail or push template needs beside the decision: the recommended items' names, links,
images and prices, the offer's value, expiry and cost, and the reason the customer is in the
audience (the trigger, or the model and its decile). Pure compute over frames the export reads."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ml.activation.settings import Audience, BrowseAbandoned, CartAbandoned, DaysAfterSignup, Economics, NoOrderFor

# Each list column of the files, and the catalog column it is read from.
ITEM_DETAILS = {
    "recommended_item_names": "item_name",
    "recommended_item_urls": "url",
    "recommended_item_image_urls": "image_url",
    "recommended_item_prices": "price",
}
DECILES = 10


def item_details(items: list[str] | None, catalog: pd.DataFrame) -> dict[str, list | None]:
    """The catalog's name, URL, image URL and price of each recommended item, in the items' order
    (None where the catalog does not know it)."""
    if items is None:
        return dict.fromkeys(ITEM_DETAILS)
    known = catalog.reindex(items)
    return {
        column: [None if pd.isna(value) else value for value in known[source].tolist()]
        for column, source in ITEM_DETAILS.items()
    }


def offer_fields(offer_code: str | None, audience: Audience, economics: Economics, send_day: dt.date) -> dict:
    """The offer's value (what the customer gets), the last day it is valid and what a redeemed order
    costs the company; empty without an offer."""
    if offer_code is None:
        return {"offer_value": None, "offer_expires_on": None, "offer_cost": None}
    offer = economics.offers.get(offer_code)
    valid_days = (offer.valid_days if offer else None) or audience.goal.window_days
    return {
        "offer_value": offer.customer_value() if offer else None,
        "offer_expires_on": (send_day + dt.timedelta(days=valid_days - 1)).isoformat(),
        "offer_cost": offer.company_cost(economics.currency) if offer else None,
    }


def score_deciles(scores: pd.Series) -> pd.Series:
    """Each customer's propensity decile among the scored customers of the day (1: the top 10%)."""
    ranks = scores.rank(ascending=False, method="first", pct=True)
    return np.ceil(ranks * DECILES).clip(1, DECILES).astype("Int64")


def _when(timestamp: object) -> str:
    return "" if pd.isna(timestamp) else f" on {pd.Timestamp(timestamp):%Y-%m-%d at %H:%M} UTC"


def _item(item_id: object, names: pd.Series) -> str:
    if pd.isna(item_id):
        return "an item"
    name = names.get(item_id)
    return f"{name} ({item_id})" if isinstance(name, str) else str(item_id)


def reason(audience: Audience, customer: pd.Series, names: pd.Series, model_versions: dict[str, str | None]) -> str:
    """Why the customer is in the audience, in a sentence a marketer or an agent can read: the
    trigger (which cart or product, when), the days since the signup or the last order, or the
    model and decile that selected them; else the audience's behavioral identifier."""
    moment = audience.moment
    if isinstance(moment, CartAbandoned):
        return (
            f"added {_item(customer['last_cart_item_id'], names)} to the cart{_when(customer['last_add_to_cart_at'])}"
        )
    if isinstance(moment, BrowseAbandoned):
        return f"viewed {_item(customer['last_viewed_item_id'], names)}{_when(customer['last_product_view_at'])}"
    if isinstance(moment, NoOrderFor):
        return f"last order {int(customer['recency_days'])} days ago"
    if isinstance(moment, DaysAfterSignup):
        return f"signed up {int(customer['tenure_days'])} days ago"
    if audience.selection is not None and not pd.isna(customer.get("score_decile")):
        return (
            f"propensity model v{model_versions.get('propensity') or '?'}: purchase probability "
            f"{customer['score']:.2f}, decile {customer['score_decile']} of {DECILES}"
        )
    if audience.is_predictive:
        return f"personal recommendations of recommender v{model_versions.get('recommender') or '?'}"
    return audience.behavioral_identifier
