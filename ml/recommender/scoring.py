"""Nightly batch scoring: top K items for every customer known at ds into marts.customer_recommendations.

The model in use is the `champion`; for a backfill of a date before the champion was trained, the
newest version trained on or before that date (never a model that saw the future of ds). Customers
with too little history, or everyone when no model exists yet, get the default experience (see
ml.recommender.serving); `strategy` says which rows came from where.

The stage is sharded over customers (RecommendationScoring implements ml.mlops.sharding.ShardedScoring):
`plan` reads the warehouse and fixes the model version, `score_shard` scores one slice of customers
anywhere, and `merge` writes the partition. A customer's items depend only on that customer's
history and the night's shared inputs, so the shard count never changes the result.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.constants import CUSTOMER_ID, ITEM_ID
from ml.dates import end_of
from ml.mlops.lifecycle import readable_serving
from ml.mlops.sharding import (
    Shard,
    collect,
    customers_of,
    finish,
    plan,
    plan_facts,
    planned_customers,
    shared_inputs,
    write_result,
)
from ml.recommender.data import RecommenderInputs, View, read_inputs, serve_view, view_as_of
from ml.recommender.neighbors import write_item_structure
from ml.recommender.ranking import MISSING
from ml.recommender.settings import RecommenderConfig
from ml.recommender.training import MODEL_NAME, load_bundle
from ml.warehouse.declared import column_names, ddl
from ml.warehouse.partitions import replace_partition

log = logging.getLogger(__name__)

TABLE = "marts.customer_recommendations"
DDL = ddl(TABLE)  # declared in dbt_project/models/outputs/_python_outputs.yml
COLUMNS = column_names(TABLE)


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


@dataclass(frozen=True)
class RecommendationScoring:
    """The score_recommendations stage as a sharded scoring (ml.mlops.sharding.ShardedScoring)."""

    config: RecommenderConfig
    shards: int  # scoring.shards
    stage: str = STAGE

    def plan(self, ds: dt.date) -> list[Shard]:
        """Read the warehouse once for ds, fix the model version, and split the customers into shards."""
        inputs = read_inputs(ds, self.config)
        version, why, alerts = model_for(ds)
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
            shared = ScoringInputs(inputs, view_as_of(inputs, end_of(ds), self.config))
            # The item structure the online service re-ranks with, from the same version and view.
            bundle = load_bundle(f"models:/{MODEL_NAME}/{version}") if version else None
            facts.update(
                write_item_structure(
                    ds, bundle.scoring if bundle else None, inputs, shared.view, version, self.config.k
                )
            )
        return plan(STAGE, ds, inputs.customers[CUSTOMER_ID], self.shards, facts, shared)

    def score_shard(self, shard: Shard) -> dict[str, object]:
        """Top K items for one shard's customers, from the plan's files only (never the warehouse)."""
        facts = plan_facts(STAGE, shard.ds)
        customer_ids = pd.Index(customers_of(shard))
        if facts["empty_catalog"]:
            return write_result(shard, pd.DataFrame({column: [] for column in COLUMNS}))
        planned: ScoringInputs = shared_inputs(shard)
        version = facts["model_version"]
        bundle = load_bundle(f"models:/{MODEL_NAME}/{version}") if version else None
        return write_result(shard, top_items(shard.ds, customer_ids, planned, bundle, version, self.config))

    def merge(self, ds: dt.date, shards: int) -> dict[str, object]:
        """Replace the ds partition of marts.customer_recommendations with every shard's rows; returns
        counts by strategy."""
        facts = plan_facts(STAGE, ds)
        customers = planned_customers(STAGE, ds)
        rows = collect(STAGE, ds, shards)
        replace_partition(TABLE, DDL, ds, rows, order_by="customer_id, rank")
        finish(STAGE, ds)
        alerts = facts.get("alerts", [])
        if facts["empty_catalog"]:
            return {"rows": 0, "customers": len(customers), "reason": "empty catalog", "alerts": alerts}
        k = self.config.k
        per_customer = rows.groupby(CUSTOMER_ID).size().reindex(customers, fill_value=0)
        short = int((per_customer < k).sum())
        if short:
            log.warning(
                "ds=%s %d customers got fewer than %d items: not enough eligible items they have not bought",
                ds,
                short,
                k,
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


def top_items(
    ds: dt.date, customer_ids: pd.Index, planned: ScoringInputs, bundle, version: str | None, config: RecommenderConfig
) -> pd.DataFrame:
    """The rows of marts.customer_recommendations for these customers: the bundle's items (or the
    default experience when no bundle serves), K per customer at most."""
    exclude_interacted = bundle.exclude_interacted if bundle else config.exclude_interacted is True
    audience = planned.view.audience(customer_ids, config.exclude_purchased, exclude_interacted)
    served = serve_view(bundle.scoring if bundle else None, planned.view, audience, planned.inputs, config)
    found = served.items != MISSING
    rows = pd.DataFrame(
        {
            "ds": ds,
            CUSTOMER_ID: np.repeat(customer_ids.to_numpy(), config.k)[found.ravel()],
            "rank": np.tile(np.arange(1, config.k + 1, dtype=np.int32), len(customer_ids))[found.ravel()],
            ITEM_ID: planned.inputs.item_ids.to_numpy()[served.items[found]],
            "score": served.scores[found].astype(float),
            "strategy": served.strategy[found].astype(str),
        }
    )
    rows["model_version"] = np.where(rows["strategy"] == "model", version or "", None)
    return rows
