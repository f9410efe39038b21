"""Nightly scoring: a calibrated probability of buying within horizon_days, and its decile, for every
customer known at ds, into marts.customer_scores (DESIGN section 5)."""

from __future__ import annotations

import datetime as dt
import logging

import mlflow
import pandas as pd
from mlflow import MlflowClient

from ml.config import mlflow_tracking_uri
from ml.constants import CUSTOMER_ID
from ml.partitions import replace_partition
from ml.propensity.dataset import scoring_rows
from ml.propensity.model import deciles
from ml.propensity.training import MODEL_NAME, load_bundle
from ml.registry import version_for

log = logging.getLogger(__name__)

TABLE = "marts.customer_scores"
DDL = f"""
create schema if not exists marts;
create table if not exists {TABLE} (
    ds date not null,
    customer_id varchar not null,
    model_name varchar not null,
    model_version varchar not null,
    score double not null,
    decile integer not null
)
"""


def score_customers(ds: str) -> dict[str, object]:
    """Replace the ds partition of marts.customer_scores with the model in use for ds."""
    ds_date = dt.date.fromisoformat(ds)
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    version, why = version_for(MlflowClient(), MODEL_NAME, ds_date)
    if version is None:
        log.warning("ds=%s no propensity scores: %s", ds, why)
        replace_partition(TABLE, DDL, ds_date, pd.DataFrame(), order_by="customer_id")
        return {"rows": 0, "reason": why}
    bundle = load_bundle(f"models:/{MODEL_NAME}/{version.version}")
    rows = scoring_rows(ds_date)
    scores = bundle.scoring.predict(rows)
    scored = pd.DataFrame(
        {
            "ds": ds_date,
            CUSTOMER_ID: rows[CUSTOMER_ID].to_numpy(),
            "model_name": MODEL_NAME,
            "model_version": str(version.version),
            "score": scores.astype(float),
            "decile": deciles(scores),
        }
    )
    replace_partition(TABLE, DDL, ds_date, scored, order_by="customer_id")
    log.info(
        "ds=%s %s: %d customers scored with %s v%s (%s), mean %.3f",
        ds,
        TABLE,
        len(scored),
        MODEL_NAME,
        version.version,
        why,
        scored["score"].mean(),
    )
    return {"rows": len(scored), "model_version": str(version.version), "mean_score": float(scored["score"].mean())}
