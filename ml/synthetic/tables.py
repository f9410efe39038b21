"""The simulation's output as the landing contract's tables."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml.synthetic.arrays import _categorical, _ids, _timestamps
from ml.synthetic.behaviour import (
    CONSENT_CHANNELS,
    COUNTRIES,
    DEVICES,
    EVENT_CHANNELS,
    EVENT_TYPES,
    ORDER_CHANNELS,
    ORDER_STATUSES,
    REVOCATION_RATE,
    SECONDS_PER_DAY,
    SURVEY_TOUCHPOINTS,
)
from ml.synthetic.catalog import Catalog
from ml.synthetic.population import Population
from ml.synthetic.settings import GeneratorSettings
from ml.synthetic.simulation import Simulation
from ml.warehouse.contract import CONTRACT

# ----------------------------------------------------------------------------- tables


def build_tables(
    settings: GeneratorSettings, population: Population, catalog: Catalog, sim: Simulation, rng: np.random.Generator
) -> dict[str, pa.Table]:
    customer_ids = population.table["customer_id"]
    item_ids = catalog.table["item_id"]
    events = _events_table(sim, population, customer_ids, item_ids)
    order_ids, orders, order_items = _order_tables(sim, population, customer_ids, item_ids)
    surveys = _survey_table(settings, sim, customer_ids, order_ids)
    consents = _consent_table(settings, population, rng)
    erased = np.flatnonzero(sim.erasure_seconds >= 0)
    erasure_requests = pa.table(
        {
            "customer_id": pc.take(customer_ids, pa.array(erased)),
            "requested_at": _timestamps(sim.erasure_seconds[erased]),
        }
    )
    return {
        "customers": population.table,
        "items": catalog.table,
        "orders": orders,
        "order_items": order_items,
        "events": events,
        "survey_responses": surveys,
        "consents": consents,
        "erasure_requests": erasure_requests,
        # What the online service writes (ml.serving): no demo history, the files exist with their header.
        **{name: _empty(name) for name in ("identity_links", "served_decisions")},
        "campaign_sends": _empty("campaign_sends"),  # replaced by the planted campaign's sends when there is one
    }


def _empty(table_name: str) -> pa.Table:
    return pa.table({column: pa.array([], pa.string()) for column in CONTRACT[table_name].columns})


def _events_table(sim: Simulation, population: Population, customer_ids, item_ids) -> pa.Table:
    """The events in time order (the simulation's columns are freed as they are read)."""
    ev = sim.events
    event_order = np.lexsort((ev["customer"], ev["seconds"]))
    for name in list(ev):  # reorder column by column, so only one extra copy exists at a time
        ev[name] = ev[name][event_order]
    del event_order
    has_item = ev["item"] >= 0
    event_item = pc.if_else(
        pa.array(has_item), pc.take(item_ids, pa.array(np.maximum(ev["item"], 0))), pa.scalar(None, pa.string())
    )
    events = pa.table(
        {
            "event_id": _ids("E", np.arange(1, len(ev["customer"]) + 1), 9),
            "customer_id": pc.take(customer_ids, pa.array(ev["customer"])),
            "occurred_at": _timestamps(ev["seconds"]),
            "event_type": _categorical(EVENT_TYPES, ev["type"]),
            "item_id": event_item,
            "channel": _categorical(EVENT_CHANNELS, ev["channel"]),
            "device": _categorical(DEVICES, population.device[ev["customer"]]),
            # Every demo event names its customer; the online service writes anonymous visitors' events.
            "anonymous_id": pa.nulls(len(ev["customer"]), pa.string()),
        }
    )
    sim.events.clear()
    return events


def _order_tables(sim: Simulation, population: Population, customer_ids, item_ids):
    """(order ids, orders, order items): totals are the sum of each order's lines."""
    od = sim.orders
    n_orders = len(od["customer"])
    order_ids = _ids("O", np.arange(1, n_orders + 1), 8)
    lines = sim.order_items
    totals = np.bincount(lines["order_number"], weights=lines["quantity"] * lines["unit_price"], minlength=n_orders)
    currencies = np.array([c[2] for c in COUNTRIES])[population.country[od["customer"]]]
    orders = pa.table(
        {
            "order_id": order_ids,
            "customer_id": pc.take(customer_ids, pa.array(od["customer"])),
            "ordered_at": _timestamps(od["seconds"]),
            "total_amount": pa.array(np.round(totals, 2)),
            "currency": pa.array(currencies),
            "status": pa.array(ORDER_STATUSES[od["status"].astype(int)]),
            "channel": pa.array(ORDER_CHANNELS[od["channel"].astype(int)]),
        }
    )
    order_items = pa.table(
        {
            "order_id": pc.take(order_ids, pa.array(lines["order_number"])),
            "item_id": pc.take(item_ids, pa.array(lines["item"])),
            "quantity": pa.array(lines["quantity"].astype(np.int64)),
            "unit_price": pa.array(lines["unit_price"]),
        }
    )
    return order_ids, orders, order_items


def _survey_table(settings: GeneratorSettings, sim: Simulation, customer_ids, order_ids) -> pa.Table:
    """The survey responses in time order, up to the end of the export window."""
    sv = sim.surveys
    survey_order = np.argsort(sv["seconds"], kind="stable")
    sv = {k: v[survey_order] for k, v in sv.items()}
    end_seconds = settings.start_epoch + settings.days * SECONDS_PER_DAY
    in_window = sv["seconds"] < end_seconds  # a delivery survey may fall after the export
    sv = {k: v[in_window] for k, v in sv.items()}
    has_order = sv["order_number"] >= 0
    comments = np.where(sv["score"] <= 2, "Not happy with this", "")
    survey_types = np.array(["csat", "ces", "nps"])
    surveys = pa.table(
        {
            "response_id": _ids("S", np.arange(1, len(sv["customer"]) + 1), 8),
            "customer_id": pc.take(customer_ids, pa.array(sv["customer"])),
            "responded_at": _timestamps(sv["seconds"]),
            "survey_type": pa.array(survey_types[sv["type"].astype(int)]),
            "score": pa.array(sv["score"].astype(np.int64)),
            "touchpoint": pa.array(SURVEY_TOUCHPOINTS[sv["touchpoint"].astype(int)]),
            "order_id": pc.if_else(
                pa.array(has_order),
                pc.take(order_ids, pa.array(np.maximum(sv["order_number"], 0))),
                pa.scalar(None, pa.string()),
            ),
            "comment": pc.if_else(pa.array(comments != ""), pa.array(comments), pa.scalar(None, pa.string())),
        }
    )
    return surveys


def _consent_table(settings, population, rng) -> pa.Table:
    n = settings.customers
    n_channels = len(CONSENT_CHANNELS)
    end_seconds = settings.start_epoch + settings.days * SECONDS_PER_DAY
    customer = np.repeat(np.arange(n), n_channels)
    channel = np.tile(np.arange(n_channels), n)
    granted = population.consent_granted.ravel()
    recorded = population.signup_seconds[customer] + rng.integers(1, 600, len(customer))
    # Later revocations of a share of the grants, at a random time before the export.
    revoking = np.flatnonzero(granted & (rng.random(len(customer)) < REVOCATION_RATE))
    revoked_at = recorded[revoking] + (rng.random(len(revoking)) * (end_seconds - recorded[revoking])).astype(np.int64)
    all_customer = np.r_[customer, customer[revoking]]
    order = np.lexsort((np.r_[recorded, revoked_at], all_customer))
    return pa.table(
        {
            "customer_id": pc.take(population.table["customer_id"], pa.array(all_customer[order])),
            "channel": pa.array(CONSENT_CHANNELS[np.r_[channel, channel[revoking]][order]]),
            "granted": pa.array(np.r_[granted, np.zeros(len(revoking), dtype=bool)][order]),
            "recorded_at": _timestamps(np.r_[recorded, revoked_at][order]),
        }
    )
