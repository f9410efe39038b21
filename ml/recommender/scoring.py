"""Nightly batch scoring: top K items for every customer known at ds into marts.customer_recommendations.

The model in use is the `champion`; for a backfill of a date before the champion was trained, the
newest version trained on or before that date (never a model that saw the future of ds). Customers
with too little history, or everyone when no model exists yet, get the default experience (see
ml.recommender.serving); `strategy` says which rows came from where.

The stage is sharded over customers (ml.orchestration.shards): plan_recommendations reads the warehouse and fixes
the model version, score_recommendation_shard scores one slice of customers anywhere, and
merge_recommendations writes the partition. A customer's items depend only on that customer's
history and the night's shared inputs, so the shard count never changes the result.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.config import load_config
from ml.constants import CUSTOMER_ID, ITEM_ID
from ml.mlops.lifecycle import readable_serving
from ml.orchestration.shards import (
    Shard,
    collect,
    customers_of,
    finish,
    plan,
    plan_facts,
    planned_customers,
    run_in_process,
    shared_inputs,
    write_result,
)
from ml.recommender.data import RecommenderInputs, View, read_inputs, serve_view, view_as_of
from ml.recommender.interactions import end_of
from ml.recommender.ranking import MISSING
from ml.recommender.training import MODEL_NAME, load_bundle
from ml.warehouse.partitions import replace_partition

log = logging.getLogger(__name__)

TABLE = "marts.customer_recommendations"
DDL = f"""
create schema if not exists marts;
create table if not exists {TABLE} (
    ds date not null,
    customer_id varchar not null,
    rank integer not null,
    item_id varchar not null,
    score double,
    strategy varchar not null,
    model_version varchar
)
"""
COLUMNS = ["ds", CUSTOMER_ID, "rank", ITEM_ID, "score", "strategy", "model_version"]


STAGE = "recommendations"


@dataclass(frozen=True)
class ScoringInputs:
    """What every shard of a night needs: the catalog and history as known at the end of ds."""

    inputs: RecommenderInputs
    view: View


def model_for(ds: dt.date) -> tuple[str | None, str, list[str]]:
    """(version, why, alerts) of the model that scores ds (ml.mlops.registry.serving_for); no version
    when the popularity baseline serves (no version beats it, none was trained by ds, or the serving
    version's artifact cannot be loaded: it is demoted and the alert says so)."""
    serving, alerts = readable_serving(MODEL_NAME, ds, load_bundle)
    version = serving.version if serving.serves_model else None
    return (str(version.version) if version is not None else None), serving.why, alerts


def plan_recommendations(ds: str) -> list[dict[str, object]]:
    """Read the warehouse once for ds, fix the model version, and split the customers into shards
    (ml.orchestration.shards); one dict of kwargs per shard for score_recommendation_shard."""
    ds_date = dt.date.fromisoformat(ds)
    config = load_config()
    inputs = read_inputs(ds_date, config.recommender)
    version, why, alerts = model_for(ds_date)
    facts: dict[str, object] = {
        "model_version": version,
        "why": why,
        "empty_catalog": inputs.items.empty,
        "alerts": alerts,
    }
    if inputs.items.empty:
        log.warning("ds=%s no recommendations: the catalog (staging.stg_items) is empty", ds)
    log.info("ds=%s scoring with %s (%s)", ds, f"{MODEL_NAME} v{version}" if version else "no model", why)
    shared = None
    if not inputs.items.empty:
        shared = ScoringInputs(inputs, view_as_of(inputs, end_of(ds_date), config.recommender))
    shards = plan(STAGE, ds, inputs.customers[CUSTOMER_ID], config.scoring.shards, facts, shared)
    return [shard.as_kwargs() for shard in shards]


def score_recommendation_shard(ds: str, shard: int, shards: int) -> dict[str, object]:
    """Top K items for one shard's customers, from the plan's files only (never the warehouse)."""
    unit = Shard(STAGE, ds, shard, shards)
    config = load_config().recommender
    facts = plan_facts(STAGE, ds)
    customer_ids = pd.Index(customers_of(unit))
    if facts["empty_catalog"]:
        return write_result(unit, pd.DataFrame({column: [] for column in COLUMNS}))
    planned: ScoringInputs = shared_inputs(unit)
    version = facts["model_version"]
    bundle = load_bundle(f"models:/{MODEL_NAME}/{version}") if version else None
    exclude_interacted = bundle.exclude_interacted if bundle else config.exclude_interacted is True
    audience = planned.view.audience(customer_ids, config.exclude_purchased, exclude_interacted)
    served = serve_view(bundle.scoring if bundle else None, planned.view, audience, planned.inputs, config)
    found = served.items != MISSING
    rows = pd.DataFrame(
        {
            "ds": dt.date.fromisoformat(ds),
            CUSTOMER_ID: np.repeat(customer_ids.to_numpy(), config.k)[found.ravel()],
            "rank": np.tile(np.arange(1, config.k + 1, dtype=np.int32), len(customer_ids))[found.ravel()],
            ITEM_ID: planned.inputs.item_ids.to_numpy()[served.items[found]],
            "score": served.scores[found].astype(float),
            "strategy": served.strategy[found].astype(str),
        }
    )
    rows["model_version"] = np.where(rows["strategy"] == "model", version or "", None)
    return write_result(unit, rows)


def merge_recommendations(ds: str, shards: int) -> dict[str, object]:
    """Replace the ds partition of marts.customer_recommendations with every shard's rows; returns
    counts by strategy."""
    ds_date = dt.date.fromisoformat(ds)
    k = load_config().recommender.k
    facts = plan_facts(STAGE, ds)
    customers = planned_customers(STAGE, ds)
    rows = collect(STAGE, ds, shards)
    replace_partition(TABLE, DDL, ds_date, rows, order_by="customer_id, rank")
    finish(STAGE, ds)
    alerts = facts.get("alerts", [])
    if facts["empty_catalog"]:
        return {"rows": 0, "customers": len(customers), "reason": "empty catalog", "alerts": alerts}
    per_customer = rows.groupby(CUSTOMER_ID).size().reindex(customers, fill_value=0)
    short = int((per_customer < k).sum())
    if short:
        log.warning(
            "ds=%s %d customers got fewer than %d items: not enough eligible items they have not bought", ds, short, k
        )
    counts = rows["strategy"].value_counts().to_dict()
    log.info("ds=%s %s: %d rows for %d customers %s", ds, TABLE, len(rows), len(customers), counts)
    return {
        "rows": len(rows),
        "customers": len(customers),
        "short_customers": short,
        "model_version": facts["model_version"],
        "shards": shards,
        **{f"rows_{name}": int(n) for name, n in counts.items()},
        "alerts": alerts,
    }


def score_recommendations(ds: str) -> dict[str, object]:
    """Plan, every shard in turn, merge: the whole stage in one process (ml.orchestration.pipeline, tests)."""
    return run_in_process(ds, plan_recommendations, score_recommendation_shard, merge_recommendations)
