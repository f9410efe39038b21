"""The entry points: generate a data set into a landing directory (`python -m ml synthetic`)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.synthetic.behaviour import CATEGORIES
from ml.synthetic.campaigns import plant_campaign, write_campaign_truth
from ml.synthetic.catalog import make_catalog
from ml.synthetic.corruption import write_landing
from ml.synthetic.population import make_population
from ml.synthetic.settings import GeneratorSettings
from ml.synthetic.simulation import simulate
from ml.synthetic.tables import build_tables

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- entry points


def generate(settings: GeneratorSettings, out: Path) -> dict[str, int]:
    """Generate the landing tables under `out` and ground truth beside it; return row counts."""
    started = time.perf_counter()
    rng = np.random.default_rng(settings.seed)
    catalog = make_catalog(settings, rng)
    population = make_population(settings, rng)
    sim = simulate(settings, population, catalog, rng)
    campaign = settings.planted_campaign
    history = (
        plant_campaign(campaign, population, catalog, sim, settings.start_epoch, settings.days) if campaign else None
    )
    tables = build_tables(settings, population, catalog, sim, rng)
    if history is not None:
        tables["campaign_sends"] = history.sends
    erased_customers = set(tables["erasure_requests"]["customer_id"].to_pylist())
    ledger = write_landing(tables, settings, out, rng, erased_customers)
    truth_dir = out.parent / "synthetic_truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    ledger.to_csv(truth_dir / "bad_rows_ledger.csv", index=False)
    truth = pd.DataFrame(
        {
            "customer_id": population.table["customer_id"].to_pandas(),
            "preferred_category": CATEGORIES[population.preference.argmax(axis=1)],
            "preferred_category_share": population.preference.max(axis=1),
            "engagement": population.engagement,
            "satisfaction": population.satisfaction,
            "is_browser_only": population.is_browser_only,
            "preferred_hour": population.preferred_hour,  # local time: the send-time model's truth
            "churn_day": sim.churn_day,
            "planted_orders": sim.planted_responses,
        }
    )
    truth.to_parquet(truth_dir / "customers.parquet", index=False)
    write_campaign_truth(history, population, truth_dir)
    planted_path = truth_dir / "planted_lift.json"
    planted_path.unlink(missing_ok=True)
    # Every planted order, and whether only the planted effect caused it (incremental): what the
    # revenue readout's interval must cover.
    planted_kind = sim.orders["planted"]
    planted_orders = tables["orders"].filter(pa.array(planted_kind > 0)).to_pandas()
    planted_orders["incremental"] = planted_kind[planted_kind > 0] == 2
    planted_orders.to_parquet(truth_dir / "planted_orders.parquet", index=False)
    if settings.planted_lift:
        planted = settings.planted_lift
        first_day = settings.end_date - dt.timedelta(days=min(planted.days, settings.days) - 1)
        planted_path.write_text(
            json.dumps(
                {
                    "audience": planted.audience,
                    "arms": dict(planted.arms),
                    "from": first_day.isoformat(),
                    "to": settings.end_date.isoformat(),
                    "orders_placed_because_of_it": int(sim.planted_responses.sum()),
                    "incremental_completed_orders": int(
                        (planted_orders["incremental"] & (planted_orders["status"] == "completed")).sum()
                    ),
                },
                indent=2,
            )
            + "\n"
        )
    counts = {name: table.num_rows for name, table in tables.items()}
    log.info("generated %s in %.1f s (%d bad rows injected)", counts, time.perf_counter() - started, len(ledger))
    return counts
