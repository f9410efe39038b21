"""The Feast feature store (feature_store/): export the dbt snapshots, `feast apply`, materialize, look up.

The offline store (DuckDB over the exported parquet) serves point-in-time joins for training; the
online store (SQLite) serves the latest snapshot per customer in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import duckdb
import pandas as pd

from ml.constants import CUSTOMER_ID
from ml.paths import REPO_ROOT, data_dir, warehouse_path

log = logging.getLogger(__name__)

REPO_DIR = REPO_ROOT / "feature_store"
FEATURE_VIEW = "customer_features"
SNAPSHOTS_TABLE = "marts.customer_features_daily"
TIMESTAMP = "event_timestamp"  # Feast's name for the as-of time of an entity row


def store_dir() -> Path:
    return data_dir() / "feature_store"


def snapshots_path() -> Path:
    return store_dir() / "customer_features_daily.parquet"


def registry_path() -> Path:
    return store_dir() / "registry.db"  # feature_store.yaml: registry.path


def online_store_path() -> Path:
    return store_dir() / "online_store.db"  # feature_store.yaml: online_store.path


def _environment() -> dict[str, str]:
    # feature_store.yaml and the definitions resolve their paths from PZ_DATA_DIR; the definitions
    # import the platform's paths and the dbt project's vars, so the repository is on the path.
    return {
        **os.environ,
        "PZ_DATA_DIR": str(data_dir()),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }


def export_snapshots() -> int:
    """Write every snapshot of marts.customer_features_daily to the parquet the Feast source reads.
    Timestamps are UTC with microsecond precision (nanoseconds break Feast's DuckDB materialize)."""
    store_dir().mkdir(parents=True, exist_ok=True)
    target = snapshots_path()
    partial = target.with_suffix(".parquet.partial")
    with duckdb.connect(str(warehouse_path())) as connection:
        connection.execute("set TimeZone = 'UTC'")
        rows = connection.execute(f"select count(*) from {SNAPSHOTS_TABLE}").fetchone()[0]
        connection.execute(
            f"copy (select * replace (cast(feature_timestamp as timestamptz) as feature_timestamp) "
            f"from {SNAPSHOTS_TABLE} order by feature_date, customer_id) to '{partial}' (format parquet)"
        )
    partial.replace(target)  # readers never see a half-written file
    return rows


def feast_apply() -> None:
    """`feast apply` on the repository: registers the entity, the source and the feature view.

    The registry is made anew from the definitions every time. Feast's registry records the
    absolute paths of the infrastructure it created (the SQLite online store's file): a registry
    copied with a data directory (a restore into another folder, a staging copy) made the copy's
    apply drop the original's online table. A registry of this run's own, made from code, can
    only ever name this data directory, and it recreates an online table that went missing.
    The online store's rows are kept: apply creates its table only when absent."""
    registry_path().unlink(missing_ok=True)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("feast")), "apply"],
        cwd=REPO_DIR,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"feast apply failed in {REPO_DIR}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")


@lru_cache(maxsize=4)
def _store(data_directory: str):
    from feast import FeatureStore

    os.environ["PZ_DATA_DIR"] = data_directory
    return FeatureStore(repo_path=str(REPO_DIR))


def store():
    """The FeatureStore of the current PZ_DATA_DIR."""
    return _store(str(data_dir()))


@lru_cache(maxsize=4)
def _schema(data_directory: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(feature names, string-typed names) of the view. Cached: get_feature_view re-reads the
    registry file on every call, which cost 120 ms per online lookup."""
    from feast.types import String

    features = store().get_feature_view(FEATURE_VIEW).features
    return tuple(f.name for f in features), tuple(f.name for f in features if f.dtype == String)


def feature_references() -> list[str]:
    return [f"{FEATURE_VIEW}:{name}" for name in _schema(str(data_dir()))[0]]


def categorical_features() -> list[str]:
    """Names of the string-typed features (the others are numeric), as declared in the feature view."""
    return list(_schema(str(data_dir()))[1])


# Rows written to the online store at a time. Feast's own materialize converts the whole window to
# protobuf values in one go: at 1M customers that took more than 24 GB and was killed
# (bench/results.md); in batches the memory stays flat.
ONLINE_WRITE_BATCH_ROWS = 100_000


def materialize(ds: str) -> None:
    """Load the latest snapshot of every customer as of the end of ds into the online store: the
    snapshot of ds itself, which holds every customer known at ds (marts.customer_features_daily)."""
    feature_store = store()
    columns = [CUSTOMER_ID, "feature_timestamp", *_schema(str(data_dir()))[0]]
    with duckdb.connect() as connection:
        batches = connection.sql(
            f"select {', '.join(columns)} from read_parquet($path) where feature_date = $ds",
            params={"path": str(snapshots_path()), "ds": dt.date.fromisoformat(ds)},
        ).to_arrow_reader(ONLINE_WRITE_BATCH_ROWS)
        for batch in batches:
            feature_store.write_to_online_store(FEATURE_VIEW, batch.to_pandas())


def purge_online_store(customer_ids: list[str]) -> int:
    """Delete these customers' rows from the Feast online store (SQLite) and return how many keys
    were deleted. Feast has no delete for an entity, so the rows are removed by their serialized
    entity key, computed with Feast's own serializer."""
    import sqlite3

    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    path = online_store_path()
    if not customer_ids or not path.exists():
        return 0
    feature_store = store()
    table = f"{feature_store.project}_{FEATURE_VIEW}"
    version = feature_store.config.entity_key_serialization_version
    keys = [
        serialize_entity_key(
            EntityKey(join_keys=[CUSTOMER_ID], entity_values=[Value(string_val=customer_id)]),
            entity_key_serialization_version=version,
        )
        for customer_id in customer_ids
    ]
    with sqlite3.connect(path) as connection:
        exists = connection.execute("select 1 from sqlite_master where type = 'table' and name = ?", [table]).fetchall()
        if not exists:
            return 0
        deleted = 0
        for key in keys:  # one row per feature: count the customers, not the rows
            deleted += connection.execute(f'delete from "{table}" where entity_key = ?', [key]).rowcount > 0
    return deleted


def build_feature_store(ds: str) -> dict[str, int]:
    """The nightly stage: export the snapshots (erased customers are already out of them: the
    dbt mart purges them from every date), feast apply, materialize ds into the online store, and
    delete erased customers' rows that an earlier night wrote to the online store."""
    from ml.warehouse.erasure import erased_customer_ids

    rows = export_snapshots()
    feast_apply()
    _store.cache_clear()  # the registry changed on disk
    _schema.cache_clear()
    materialize(ds)
    purged = purge_online_store(erased_customer_ids())
    log.info(
        "ds=%s feature store: %d snapshot rows exported, online store materialized, %d erased customers removed",
        ds,
        rows,
        purged,
    )
    return {"snapshot_rows": rows, "erased_customers_removed_online": purged}


def online_features(customer_ids: list[str]) -> pd.DataFrame:
    """The latest features of these customers from the online store, one row each; numeric
    features as floats (NaN when missing, the form the propensity model takes), unknown customers
    all missing. A lookup of one customer takes a few milliseconds (bench/results.md):

        >>> online_features(["C0000001"]).loc[0, "recency_days"]
    """
    response = store().get_online_features(
        features=feature_references(), entity_rows=[{CUSTOMER_ID: customer_id} for customer_id in customer_ids]
    )
    frame = pd.DataFrame(response.to_dict())
    numeric = [column for column in frame.columns if column != CUSTOMER_ID and column not in categorical_features()]
    frame[numeric] = frame[numeric].astype(float)
    return frame


def historical_features(entity_rows: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join: for each (customer_id, event_timestamp) the snapshot valid at that time
    (the latest at or before it, within the view's TTL). Other columns of entity_rows pass through."""
    frame = entity_rows.copy()
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True).astype("datetime64[us, UTC]")
    job = store().get_historical_features(entity_df=frame, features=feature_references())
    return job.to_df()
