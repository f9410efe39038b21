"""Nightly scoring: a calibrated probability of buying within horizon_days, and its decile, for every
customer known at ds, into marts.customer_scores. When no version beats the RFM
heuristic (ml.mlops.registry), the version's calibrated RFM fallback scores, with model_name
`rfm_heuristic`."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from ml.config import load_config
from ml.constants import CUSTOMER_ID
from ml.mlops.lifecycle import readable_serving
from ml.orchestration.shards import (
    Shard,
    ShardError,
    collect,
    customers_of,
    finish,
    plan,
    plan_facts,
    planned_customers,
    rows_of,
    run_in_process,
    write_result,
)
from ml.propensity.dataset import scoring_customers, scoring_rows
from ml.propensity.model import RFM_FALLBACK, deciles
from ml.propensity.training import MODEL_NAME, load_bundle
from ml.warehouse.partitions import replace_partition

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


STAGE = "scores"


def plan_scores(ds: str) -> list[dict[str, object]]:
    """Fix the model version for ds and split the customers known at ds into shards (ml.orchestration.shards);
    one dict of kwargs per shard for score_shard."""
    ds_date = dt.date.fromisoformat(ds)
    # The version carries the RFM fallback too: its artifact is needed whichever of the two serves.
    serving, alerts = readable_serving(MODEL_NAME, ds_date, load_bundle, artifact_always=True)
    version = serving.version
    if version is None:
        log.warning("ds=%s no propensity scores: %s", ds, serving.why)
    facts = {
        "model_version": str(version.version) if version is not None else None,
        "model_name": MODEL_NAME if serving.serves_model else RFM_FALLBACK,
        "why": serving.why,
        "alerts": alerts,
    }
    customers = scoring_customers(ds_date)
    # Every customer's features of ds from the Feast offline store, read once here: the shards read
    # their slice of the plan's file and never the store (on Spark that is the warehouse's table).
    features = scoring_rows(ds_date, customers) if version is not None else None
    shards = plan(STAGE, ds, customers, load_config().scoring.shards, facts, rows=features)
    return [shard.as_kwargs() for shard in shards]


def score_shard(ds: str, shard: int, shards: int) -> dict[str, object]:
    """Scores of one shard's customers from the features the plan read; never the warehouse."""
    unit = Shard(STAGE, ds, shard, shards)
    facts = plan_facts(STAGE, ds)
    version = facts["model_version"]
    customer_ids = customers_of(unit)
    if version is None or customer_ids.empty:
        return write_result(unit, pd.DataFrame({CUSTOMER_ID: pd.Series(dtype=str), "score": pd.Series(dtype=float)}))
    bundle = load_bundle(f"models:/{MODEL_NAME}/{version}")
    rows = rows_of(unit)
    scorer = bundle.scoring if facts.get("model_name", MODEL_NAME) == MODEL_NAME else bundle.fallback
    scores = scorer.predict(rows)
    return write_result(unit, pd.DataFrame({CUSTOMER_ID: rows[CUSTOMER_ID].to_numpy(), "score": scores.astype(float)}))


def merge_scores(ds: str, shards: int) -> dict[str, object]:
    """Replace the ds partition of marts.customer_scores with every shard's scores, and the deciles
    over all customers together (a shard's own deciles would be wrong)."""
    ds_date = dt.date.fromisoformat(ds)
    facts = plan_facts(STAGE, ds)
    customers = planned_customers(STAGE, ds)
    rows = collect(STAGE, ds, shards).sort_values(CUSTOMER_ID, ignore_index=True)
    version = facts["model_version"]
    if version is not None and len(rows) != len(customers):
        raise ShardError(
            f"{STAGE} ds={ds}: {len(rows)} scores for {len(customers)} planned customers; "
            "rerun the stage from its plan task"
        )
    scores = rows["score"].to_numpy()
    scored = pd.DataFrame(
        {
            "ds": ds_date,
            CUSTOMER_ID: rows[CUSTOMER_ID].to_numpy(),
            "model_name": facts.get("model_name", MODEL_NAME),
            "model_version": version,
            "score": scores,
            "decile": deciles(scores),
        }
    )
    replace_partition(TABLE, DDL, ds_date, scored, order_by="customer_id")
    finish(STAGE, ds)
    alerts = facts.get("alerts", [])
    if version is None:
        return {"rows": 0, "reason": facts["why"], "alerts": alerts}
    log.info(
        "ds=%s %s: %d customers scored with %s of %s v%s (%s) in %d shards, mean %.3f",
        ds,
        TABLE,
        len(scored),
        facts.get("model_name", MODEL_NAME),
        MODEL_NAME,
        version,
        facts["why"],
        shards,
        scores.mean() if len(scores) else float("nan"),
    )
    return {
        "rows": len(scored),
        "model_name": facts.get("model_name", MODEL_NAME),
        "model_version": version,
        "mean_score": float(scores.mean()),
        "shards": shards,
        "alerts": alerts,
    }


def score_customers(ds: str) -> dict[str, object]:
    """Plan, every shard in turn, merge: the whole stage in one process (ml.orchestration.pipeline, tests)."""
    return run_in_process(ds, plan_scores, score_shard, merge_scores)
