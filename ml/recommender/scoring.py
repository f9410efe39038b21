"""Nightly batch scoring: top K items for every customer known at ds into marts.customer_recommendations.

The model in use is the `champion`; for a backfill of a date before the champion was trained, the
newest version trained on or before that date (never a model that saw the future of ds). Customers
with too little history, or everyone when no model exists yet, get the default experience (see
ml.recommender.serving); `strategy` says which rows came from where.
"""

from __future__ import annotations

import datetime as dt
import logging

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from ml.config import load_config, mlflow_tracking_uri
from ml.constants import CUSTOMER_ID, ITEM_ID
from ml.interactions import end_of
from ml.partitions import replace_partition
from ml.recommender.data import read_inputs, serve_view, view_as_of
from ml.recommender.pyfunc import RecommenderBundle
from ml.recommender.ranking import MISSING
from ml.recommender.training import MODEL_NAME, load_bundle
from ml.registry import version_for

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


def model_for(ds: dt.date) -> tuple[str | None, RecommenderBundle | None, str]:
    """(version, bundle, why) of the model that scores ds (ml.registry.version_for)."""
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    version, why = version_for(MlflowClient(), MODEL_NAME, ds)
    if version is None:
        return None, None, why
    return str(version.version), load_bundle(f"models:/{MODEL_NAME}/{version.version}"), why


def score_recommendations(ds: str) -> dict[str, object]:
    """Replace the ds partition of marts.customer_recommendations; returns counts by strategy."""
    ds_date = dt.date.fromisoformat(ds)
    config = load_config().recommender
    inputs = read_inputs(ds_date, config)
    if inputs.items.empty:
        log.warning("ds=%s no recommendations: the catalog (staging.stg_items) is empty", ds)
        replace_partition(TABLE, DDL, ds_date, pd.DataFrame(), order_by="customer_id, rank")
        return {"rows": 0, "customers": len(inputs.customers), "reason": "empty catalog"}
    version, bundle, why = model_for(ds_date)
    log.info("ds=%s scoring with %s (%s)", ds, f"{MODEL_NAME} v{version}" if version else "no model", why)
    view = view_as_of(inputs, end_of(ds_date), config)
    audience = view.audience(view.customer_ids, config.exclude_purchased)
    served = serve_view(bundle.scoring if bundle else None, view, audience, inputs, config)
    found = served.items != MISSING
    rows = pd.DataFrame(
        {
            "ds": ds_date,
            CUSTOMER_ID: np.repeat(audience.customer_ids.to_numpy(), config.k)[found.ravel()],
            "rank": np.tile(np.arange(1, config.k + 1, dtype=np.int32), len(audience.customer_ids))[found.ravel()],
            ITEM_ID: inputs.item_ids.to_numpy()[served.items[found]],
            "score": served.scores[found].astype(float),
            "strategy": served.strategy[found].astype(str),
        }
    )
    rows["model_version"] = np.where(rows["strategy"] == "model", version or "", None)
    replace_partition(TABLE, DDL, ds_date, rows, order_by="customer_id, rank")
    short = int((found.sum(axis=1) < config.k).sum())
    if short:
        log.warning(
            "ds=%s %d customers got fewer than %d items: not enough eligible items they have not bought",
            ds,
            short,
            config.k,
        )
    counts = rows["strategy"].value_counts().to_dict()
    log.info("ds=%s %s: %d rows for %d customers %s", ds, TABLE, len(rows), len(audience.customer_ids), counts)
    return {
        "rows": len(rows),
        "customers": len(audience.customer_ids),
        "short_customers": short,
        "model_version": version,
        **{f"rows_{name}": int(n) for name, n in counts.items()},
    }
