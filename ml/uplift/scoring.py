"""The score_uplift stage: for every customer known at ds, each campaign arm's predicted uplift with
its standard error, incremental revenue and expected incremental profit, from the newest `uplift`
version trained by ds (never one that saw later data), into marts.customer_uplift. `serves` marks the
arms whose model passed its gate in a campaign whose policy ships: decide_audiences arbitrates by
those, and keeps its rules for the rest."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.constants import CUSTOMER_ID
from ml.dates import end_of
from ml.mlops.feature_store import TIMESTAMP, snapshot_features
from ml.mlops.registry import usable
from ml.mlops.tracking import use_experiment
from ml.uplift.dataset import FEATURE_DATE
from ml.uplift.model import score_customers
from ml.uplift.training import MODEL_NAME, load_bundle
from ml.warehouse.declared import ddl
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import replace_partition

log = logging.getLogger(__name__)

TABLE = "marts.customer_uplift"


def newest_version_by(ds: dt.date):
    """The newest usable `uplift` version trained for ds or earlier (None when there is none)."""
    use_experiment(MODEL_NAME)
    try:
        versions = MlflowClient().search_model_versions(f"name = '{MODEL_NAME}'")
    except MlflowException:
        return None
    trained = [v for v in versions if "ds" in v.tags and dt.date.fromisoformat(v.tags["ds"]) <= ds and usable(v)]
    return max(trained, key=lambda v: (v.tags["ds"], int(v.version)), default=None)


def features_at(ds: dt.date) -> pd.DataFrame:
    """Every customer of customer_360 at ds with their features as of the end of ds."""
    with open_warehouse() as connection:
        customers = connection.execute(
            "select customer_id from marts.customer_360 where ds = ? order by customer_id", [ds]
        ).df()
    customers[FEATURE_DATE] = ds
    customers[TIMESTAMP] = pd.Timestamp(end_of(ds), tz="UTC")
    return snapshot_features(customers, FEATURE_DATE)


def score_uplift(ds: dt.date) -> dict[str, object]:
    """Replace the ds partition of marts.customer_uplift; a summary (XCom)."""
    version = newest_version_by(ds)
    if version is None:
        log.info("ds=%s no uplift scores: no uplift version trained on or before %s", ds, ds)
        scores = pd.DataFrame(columns=[CUSTOMER_ID])
        replace_partition(TABLE, ddl(TABLE), ds, scores, order_by="customer_id")
        return {"status": "no_model", "customers": 0, "serving": []}
    bundle = load_bundle(f"models:/{MODEL_NAME}/{version.version}")
    rows = features_at(ds)
    scores = score_customers(rows, bundle.arms, bundle.terms, bundle.serving()).assign(
        model_version=str(version.version), ds=ds
    )
    replace_partition(TABLE, ddl(TABLE), ds, scores, order_by="customer_id, campaign_id, arm")
    serving = sorted(map("/".join, bundle.serving()))
    log.info(
        "ds=%s uplift v%s scored %d customers; serving arms: %s", ds, version.version, len(rows), serving or "none"
    )
    return {"status": "scored", "version": str(version.version), "customers": len(rows), "serving": serving}
