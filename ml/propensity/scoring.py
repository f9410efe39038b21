"""Nightly scoring: a calibrated probability of buying within horizon_days, and its decile, for every
customer known at ds, into marts.customer_scores. When no version beats the RFM
heuristic (ml.mlops.registry), the version's calibrated RFM fallback scores, with model_name
`rfm_heuristic`."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pandas as pd

from ml.constants import CUSTOMER_ID
from ml.mlops.lifecycle import readable_serving
from ml.mlops.sharding import (
    Shard,
    ShardError,
    collect,
    customers_of,
    finish,
    plan,
    plan_facts,
    planned_customers,
    rows_of,
    write_result,
)
from ml.propensity.dataset import scoring_customers, scoring_rows
from ml.propensity.model import RFM_FALLBACK, deciles
from ml.propensity.training import MODEL_NAME, load_bundle
from ml.warehouse.declared import ddl
from ml.warehouse.partitions import replace_partition

log = logging.getLogger(__name__)

TABLE = "marts.customer_scores"
DDL = ddl(TABLE)  # declared in dbt_project/models/outputs/_python_outputs.yml


STAGE = "scores"


@dataclass(frozen=True)
class PropensityScoring:
    """The score_propensity stage as a sharded scoring (ml.mlops.sharding.ShardedScoring)."""

    shards: int  # scoring.shards
    stage: str = STAGE

    def plan(self, ds: dt.date) -> list[Shard]:
        """Fix the model version for ds and split the customers known at ds into shards."""
        # The version carries the RFM fallback too: its artifact is needed whichever of the two serves.
        serving, alerts = readable_serving(MODEL_NAME, ds, load_bundle, artifact_always=True)
        version = serving.version
        if version is None:
            log.warning("ds=%s no propensity scores: %s", ds, serving.why)
        facts = {
            "model_version": str(version.version) if version is not None else None,
            "model_name": MODEL_NAME if serving.serves_model else RFM_FALLBACK,
            "why": serving.why,
            "alerts": alerts,
        }
        customers = scoring_customers(ds)
        # Every customer's features of ds from the Feast offline store, read once here: the shards read
        # their slice of the plan's file and never the store (on Spark that is the warehouse's table).
        features = scoring_rows(ds, customers) if version is not None else None
        return plan(STAGE, ds, customers, self.shards, facts, rows=features)

    def score_shard(self, shard: Shard) -> dict[str, object]:
        """Scores of one shard's customers from the features the plan read; never the warehouse."""
        facts = plan_facts(STAGE, shard.ds)
        version = facts["model_version"]
        customer_ids = customers_of(shard)
        if version is None or customer_ids.empty:
            empty = pd.DataFrame({CUSTOMER_ID: pd.Series(dtype=str), "score": pd.Series(dtype=float)})
            return write_result(shard, empty)
        bundle = load_bundle(f"models:/{MODEL_NAME}/{version}")
        rows = rows_of(shard)
        scorer = bundle.scoring if facts.get("model_name", MODEL_NAME) == MODEL_NAME else bundle.fallback
        scores = scorer.predict(rows)
        return write_result(
            shard, pd.DataFrame({CUSTOMER_ID: rows[CUSTOMER_ID].to_numpy(), "score": scores.astype(float)})
        )

    def merge(self, ds: dt.date, shards: int) -> dict[str, object]:
        """Replace the ds partition of marts.customer_scores with every shard's scores, and the deciles
        over all customers together (a shard's own deciles would be wrong)."""
        facts = plan_facts(STAGE, ds)
        customers = planned_customers(STAGE, ds)
        rows = collect(STAGE, ds, shards).sort_values(CUSTOMER_ID, ignore_index=True)
        version = facts["model_version"]
        if version is not None and len(rows) != len(customers):
            raise ShardError(
                f"{STAGE} ds={ds}: {len(rows)} scores for {len(customers)} planned customers; "
                "rerun the stage from its plan task"
            )
        scored = scored_rows(ds, rows, facts)
        replace_partition(TABLE, DDL, ds, scored, order_by="customer_id")
        finish(STAGE, ds)
        alerts = facts.get("alerts", [])
        if version is None:
            return {"rows": 0, "reason": facts["why"], "alerts": alerts}
        scores = scored["score"]
        model_name = facts.get("model_name", MODEL_NAME)
        log.info(
            "ds=%s %s: %d customers scored with %s of %s v%s (%s) in %d shards, mean %.3f",
            ds, TABLE, len(scored), model_name, MODEL_NAME, version, facts["why"], shards,
            scores.mean() if len(scores) else float("nan"),
        )  # fmt: skip
        return {
            "rows": len(scored),
            "model_name": model_name,
            "model_version": version,
            "mean_score": float(scores.mean()),
            "shards": shards,
            "alerts": alerts,
        }


def scored_rows(ds: dt.date, rows: pd.DataFrame, facts: dict[str, object]) -> pd.DataFrame:
    """The rows of marts.customer_scores: every shard's scores with their deciles over all customers."""
    scores = rows["score"].to_numpy()
    return pd.DataFrame(
        {
            "ds": ds,
            CUSTOMER_ID: rows[CUSTOMER_ID].to_numpy(),
            "model_name": facts.get("model_name", MODEL_NAME),
            "model_version": facts["model_version"],
            "score": scores,
            "decile": deciles(scores),
        }
    )
