"""The Feast feature store (feature_store/): export the dbt snapshots, `feast apply`, materialize, look up.

The offline store serves point-in-time joins for training; the online store (SQLite) serves the
latest snapshot per customer in milliseconds. The offline store follows the warehouse engine
(ml.warehouse.engine): on DuckDB, Feast's DuckDB store over parquet files the night exports from
marts.customer_features_daily, one per date; on Spark, Feast's Spark offline store over that table
itself, in the session the stages use (nothing is exported: the engine joins, the driver gets the
rows asked for).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import lru_cache
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from ml.constants import CUSTOMER_ID
from ml.errors import PlatformError
from ml.mlops import online_store
from ml.paths import REPO_ROOT, data_dir
from ml.warehouse.dialect import row_fingerprint_sum
from ml.warehouse.engine import on_spark, open_warehouse, warehouse_engine

log = logging.getLogger(__name__)

REPO_DIR = REPO_ROOT / "feature_store"
FEATURE_VIEW = "customer_features"
PROPENSITY_SERVICE = "propensity"  # the propensity model's feature service (feature_store/customer_features.py)
SNAPSHOTS_TABLE = "marts.customer_features_daily"
TIMESTAMP = "event_timestamp"  # Feast's name for the as-of time of an entity row
SCHEMA_FILE = "feature_schema.json"  # the view's feature names and types as registered (see _schema)


def store_dir() -> Path:
    return data_dir() / "feature_store"


def snapshots_dir() -> Path:
    """The Feast source: one parquet file per snapshot date, so a night rewrites only the dates
    that changed and a reader of some dates opens only their files."""
    return store_dir() / "customer_features_daily"


def snapshot_file(feature_date: dt.date) -> Path:
    return snapshots_dir() / f"feature_date={feature_date.isoformat()}.parquet"


def snapshots_glob() -> str:
    return str(snapshots_dir() / "*.parquet")  # the FileSource path (feature_store/customer_features.py)


def export_manifest_path() -> Path:
    return snapshots_dir() / "_exported.json"


def registry_path() -> Path:
    return store_dir() / "registry.db"  # feature_store.yaml: registry.path


def online_store_path() -> Path:
    return store_dir() / "online_store.db"  # feature_store.yaml: online_store.path


def export_snapshots() -> dict[str, int]:
    """Bring the Feast source up to date with marts.customer_features_daily, one file per snapshot
    date: a date whose rows changed (count or content hash) is rewritten, a date that left the
    table is deleted, the rest is left alone. A steady night writes ds's snapshot and the grid date
    it updates, not the whole history; an erasure changes every date its customer had, and those
    dates are rewritten. Timestamps are UTC with microsecond precision (nanoseconds break Feast's
    DuckDB materialize). The manifest is written after the files, so a killed export redoes what
    it had not recorded."""
    directory = snapshots_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (store_dir() / "customer_features_daily.parquet").unlink(missing_ok=True)  # the single file of earlier versions
    manifest = export_manifest_path()
    exported = json.loads(manifest.read_text()) if manifest.exists() else {}
    with open_warehouse() as connection:
        counted = connection.execute(
            f"select feature_date, count(*), {row_fingerprint_sum(connection)} from {SNAPSHOTS_TABLE} "
            "group by feature_date"
        ).fetchall()
        fingerprints = {date.isoformat(): f"{rows}:{digest}" for date, rows, digest in counted}
        rows_by_date = {date.isoformat(): rows for date, rows, _ in counted}
        changed = sorted(
            date
            for date, fingerprint in fingerprints.items()
            if exported.get(date) != fingerprint or not snapshot_file(dt.date.fromisoformat(date)).exists()
        )
        for date in changed:
            target = snapshot_file(dt.date.fromisoformat(date))
            partial = target.with_name(f".{target.name}.partial")  # hidden from the source's glob and from readers
            snapshot = connection.execute(
                f"select * from {SNAPSHOTS_TABLE} where feature_date = $date order by customer_id",
                {"date": dt.date.fromisoformat(date)},
            ).to_arrow_table()
            pq.write_table(utc_feature_timestamp(snapshot), partial)
            partial.replace(target)  # readers never see a half-written file
    for stale in directory.glob("feature_date=*.parquet"):
        if stale.stem.removeprefix("feature_date=") not in fingerprints:
            stale.unlink()
    partial_manifest = manifest.with_name(manifest.name + ".partial")
    partial_manifest.write_text(json.dumps(fingerprints, indent=0, sort_keys=True))
    partial_manifest.replace(manifest)
    return {
        "snapshot_dates": len(fingerprints),
        "snapshot_rows": sum(rows_by_date.values()),
        "dates_written": len(changed),
        "rows_written": sum(rows_by_date[date] for date in changed),
    }


def utc_feature_timestamp(snapshot: pa.Table) -> pa.Table:
    """The snapshot with its feature_timestamp as a UTC instant in microseconds, as Feast reads
    it: the warehouse's naive UTC timestamps (DuckDB) and the session's instants (Spark) alike."""
    position = snapshot.schema.get_field_index("feature_timestamp")
    return snapshot.set_column(
        position, "feature_timestamp", snapshot.column(position).cast(pa.timestamp("us", tz="UTC"))
    )


def _definitions():
    """feature_store/customer_features.py, executed anew: its paths follow this data directory."""
    spec = importlib.util.spec_from_file_location("feast_definitions", REPO_DIR / "customer_features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def feast_apply() -> None:
    """Register the entity, the source and the feature view (what `feast apply` does, in this
    process: the CLI's own start-up cost ten seconds a night, most of it importing Feast again).

    The registry is made anew from the definitions every time. Feast's registry records the
    absolute paths of the infrastructure it created (the SQLite online store's file): a registry
    copied with a data directory (a restore into another folder, a staging copy) made the copy's
    apply drop the original's online table. A registry of this run's own, made from code, can
    only ever name this data directory, and it recreates an online table that went missing.
    The online store's rows are kept: apply creates its table only when absent."""
    registry_path().unlink(missing_ok=True)
    _store.cache_clear()
    _schema.cache_clear()
    _feature_service.cache_clear()
    definitions = _definitions()
    with _session_settings_kept():  # on Spark, apply reads the source table's columns
        store().apply(
            [
                definitions.customer,
                definitions.customer_features_source,
                definitions.customer_features,
                definitions.propensity,
            ]
        )
    features, categorical = _registered_schema()
    copy = store_dir() / SCHEMA_FILE
    partial = copy.with_name(copy.name + ".partial")
    partial.write_text(json.dumps({"features": features, "categorical": categorical}, indent=1), encoding="utf-8")
    partial.replace(copy)
    _schema.cache_clear()


@lru_cache(maxsize=4)
def _store(data_directory: str, engine: str):
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    os.environ["PZ_DATA_DIR"] = data_directory
    # feature_store.yaml read as Feast reads it (environment variables expanded), its offline store
    # swapped for Spark's on the Spark engine: one file says where the registry and the online store are.
    settings = yaml.safe_load(os.path.expandvars((REPO_DIR / "feature_store.yaml").read_text(encoding="utf-8")))
    if engine == "spark":
        from ml.warehouse.spark import spark_settings

        settings["offline_store"] = {"type": "spark", "spark_conf": spark_settings()}
    config = RepoConfig(**settings)
    config.repo_path = REPO_DIR
    return FeatureStore(repo_path=str(REPO_DIR), config=config)


def store():
    """The FeatureStore of the current PZ_DATA_DIR and warehouse engine."""
    return _store(str(data_dir()), warehouse_engine())


@lru_cache(maxsize=4)
def _schema(data_directory: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(feature names, string-typed names) of the view, as the last apply registered it. Cached:
    get_feature_view re-reads the registry file on every call, which cost 120 ms per online lookup.
    Read from the copy feast_apply writes beside the registry when there is one: training and the
    scoring shards need only the names, and importing Feast costs each process about 10 s."""
    copy = Path(data_directory) / "feature_store" / SCHEMA_FILE
    if copy.exists():
        written = json.loads(copy.read_text(encoding="utf-8"))
        return tuple(written["features"]), tuple(written["categorical"])
    return _registered_schema()


def _registered_schema() -> tuple[tuple[str, ...], tuple[str, ...]]:
    from feast.types import String

    features = store().get_feature_view(FEATURE_VIEW).features
    return tuple(f.name for f in features), tuple(f.name for f in features if f.dtype == String)


def feature_service():
    """The propensity model's FeatureService as registered (read from the registry once per apply)."""
    return _feature_service(str(data_dir()), warehouse_engine())


@lru_cache(maxsize=4)
def _feature_service(data_directory: str, engine: str):
    return _store(data_directory, engine).get_feature_service(PROPENSITY_SERVICE)


def feature_references() -> list[str]:
    return [f"{FEATURE_VIEW}:{name}" for name in _schema(str(data_dir()))[0]]


def categorical_features() -> list[str]:
    """Names of the string-typed features (the others are numeric), as declared in the feature view."""
    return list(_schema(str(data_dir()))[1])


# Rows written to the online store at a time. Feast's own materialize converts the whole window to
# protobuf values in one go: at 1M customers that took more than 24 GB and was killed
# (bench/results.md); in batches the memory stays flat.
ONLINE_WRITE_BATCH_ROWS = 100_000


def materialize(ds: dt.date) -> dict[str, object]:
    """Bring the online store to the snapshot of ds (every customer known at ds), writing only the
    customers whose features changed since the night it holds (ml.mlops.online_store says how day
    counts are compared); everyone when there is no record of what it holds, the features changed or
    its table was empty. A backfill of an older ds leaves the newer night in place."""
    directory = store_dir()
    held = online_store.read_manifest(directory)
    if held is not None and held["ds"] > ds.isoformat():
        return {"online_write": f"kept: the online store holds the newer night {held['ds']}", "online_rows_written": 0}
    features, categorical = _schema(str(data_dir()))
    fingerprint = online_store.schema_fingerprint(features, categorical)
    full_reason = online_store.full_rewrite_reason(directory, fingerprint, _online_rows_present())
    with _snapshot_relation(ds) as connection:
        if connection is None:
            return {"online_write": f"nothing: no customer was known at {ds}", "online_rows_written": 0}
        if full_reason is None:
            connection.register("written", pq.read_table(online_store.state_path(directory)))
        columns = [CUSTOMER_ID, "feature_timestamp", *features]
        changed = connection.sql(online_store.changed_rows_query(columns, list(features), full_reason is not None))
        written = _write_online(changed.to_arrow_reader(ONLINE_WRITE_BATCH_ROWS))
        (customers,) = connection.execute("select count(*) from snapshot").fetchall()[0]
        partial = directory / f".{online_store.STATE_FILE}.partial"
        connection.sql(online_store.digests_query(list(features))).to_parquet(str(partial))
    partial.replace(online_store.state_path(directory))  # after the rows: a killed night writes them again
    how = f"every customer ({full_reason})" if full_reason else "changed customers only"
    summary = {
        "ds": ds.isoformat(),
        "schema": fingerprint,
        "customers": customers,
        "rows_written": written,
        "write": how,
    }
    online_store.write_manifest(directory, summary)
    return {"online_write": how, "online_customers": customers, "online_rows_written": written}


def _write_online(batches: Iterator[pa.RecordBatch]) -> int:
    feature_store, written = store(), 0
    for batch in batches:
        feature_store.write_to_online_store(FEATURE_VIEW, batch.to_pandas())
        written += batch.num_rows
    return written


def _online_rows_present() -> bool:
    """Whether Feast's online table exists and holds rows (a dropped table is recreated empty by apply)."""
    path = online_store_path()
    if not path.exists():
        return False
    table = f"{store().project}_{FEATURE_VIEW}"
    with closing(sqlite3.connect(path)) as connection:
        if not connection.execute("select 1 from sqlite_master where type = 'table' and name = ?", [table]).fetchone():
            return False
        return bool(connection.execute(f'select exists(select 1 from "{table}")').fetchone()[0])


@contextmanager
def _snapshot_relation(feature_date: dt.date) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """An in-memory DuckDB connection with the snapshot of `feature_date` as the relation `snapshot`
    (None when no customer was known then). On DuckDB the export's parquet file, read as it streams;
    on Spark the table's partition comes to the driver as one Arrow table (about 0.5 GB at 1M
    customers) and what costs memory, Feast's values, goes batch by batch."""
    names = ", ".join([CUSTOMER_ID, "feature_date", "feature_timestamp", *_schema(str(data_dir()))[0]])
    with duckdb.connect() as connection:
        if on_spark():
            with open_warehouse() as warehouse:
                snapshot = warehouse.execute(
                    f"select {names} from {SNAPSHOTS_TABLE} where feature_date = $date", {"date": feature_date}
                ).to_arrow_table()
            if snapshot.num_rows == 0:
                yield None
                return
            connection.register("snapshot", utc_feature_timestamp(snapshot))
        else:
            path = snapshot_file(feature_date)
            if not path.exists():
                yield None
                return
            connection.read_parquet(str(path)).select(names).create_view("snapshot")
        yield connection


def purge_online_store(customer_ids: list[str]) -> int:
    """Delete these customers' rows from the Feast online store (SQLite) and return how many keys
    were deleted. Feast has no delete for an entity, so the rows are removed by their serialized
    entity key, computed with Feast's own serializer."""
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
    online_store.forget(store_dir(), customer_ids)  # their ids in the digests of what was written
    with closing(sqlite3.connect(path)) as connection, connection:
        exists = connection.execute("select 1 from sqlite_master where type = 'table' and name = ?", [table]).fetchall()
        if not exists:
            return 0
        # Deleted rows stay readable in SQLite's free pages until overwritten: zero them as they go.
        connection.execute("pragma secure_delete = on")
        deleted = 0
        for key in keys:  # one row per feature: count the customers, not the rows
            deleted += connection.execute(f'delete from "{table}" where entity_key = ?', [key]).rowcount > 0
    return deleted


def build_feature_store(ds: dt.date) -> dict[str, int]:
    """The nightly stage: on DuckDB export the snapshots (erased customers are already out of them:
    the dbt mart purges them from every date; on Spark the offline store reads the table), feast
    apply, materialize ds into the online store, and delete erased customers' rows that an earlier
    night wrote to the online store."""
    from ml.warehouse.erasure import erased_customer_ids

    source = table_summary() if on_spark() else export_snapshots()
    feast_apply()
    online = materialize(ds)
    purged = purge_online_store(erased_customer_ids())
    held = f"{source['snapshot_dates']} snapshot dates, {source['snapshot_rows']} rows"
    if on_spark():
        offline = f"Feast reads {SNAPSHOTS_TABLE} on Spark ({held}: nothing to export)"
    else:
        offline = f"{source['dates_written']} dates exported ({source['rows_written']} rows) of {held}"
    written = f"{online['online_rows_written']} of {online.get('online_customers', 0)} customers written"
    log.info(
        "ds=%s feature store: %s; online store: %s (%s); %d erased customers removed",
        *(ds, offline, written, online["online_write"], purged),
    )
    return {**source, **online, "erased_customers_removed_online": purged}


def table_summary() -> dict[str, int]:
    """What export_snapshots reports, for the Spark engine, where the source is the table itself."""
    with open_warehouse() as warehouse:
        query = f"select count(distinct feature_date), count(*) from {SNAPSHOTS_TABLE}"
        dates, rows = warehouse.execute(query).fetchone()
    return {"snapshot_dates": dates, "snapshot_rows": rows, "dates_written": 0, "rows_written": 0}


def online_features(customer_ids: list[str]) -> pd.DataFrame:
    """The latest features of these customers from the online store, one row each; numeric
    features as floats (NaN when missing, the form the propensity model takes), unknown customers
    all missing. A lookup of one customer takes a few milliseconds (bench/results.md):

        >>> online_features(["C0000001"]).loc[0, "recency_days"]
    """
    response = store().get_online_features(
        features=feature_service(), entity_rows=[{CUSTOMER_ID: customer_id} for customer_id in customer_ids]
    )
    # Rows unchanged since an earlier night were not rewritten: their day counts are brought to the store's night.
    held = online_store.read_manifest(store_dir())
    frame = online_store.as_of(response.to_dict(include_event_timestamps=True), held and held["ds"])
    numeric = [column for column in frame.columns if column != CUSTOMER_ID and column not in categorical_features()]
    frame[numeric] = frame[numeric].astype(float)
    return frame


class MissingSnapshotError(PlatformError, LookupError):
    """Rows asked for the snapshot of a date the Feast source does not hold for their customer."""


def snapshot_features(entity_rows: pd.DataFrame, date_column: str) -> pd.DataFrame:
    """Features of each (customer_id, date) row from the snapshot of that date, reading only those
    dates' files. For the end of a snapshot date this is what the point-in-time join
    (historical_features) returns: the snapshot valid from then is that date's own. Training
    cutoffs and ds are snapshot dates; Feast's DuckDB point-in-time join reads every snapshot of
    the history for any question (at 100k customers x 730 days, 396 s and 7.1 GB for a 180-day
    training window, bench/results.md), this reads the window. Other columns pass through; a row
    whose customer has no snapshot of its date is an error that names it."""
    dates = pd.to_datetime(entity_rows[date_column]).dt.date
    names = _schema(str(data_dir()))[0]
    if on_spark():
        _check_table_dates(sorted(set(dates)))
    else:
        _check_snapshot_files(sorted(set(dates)))
    if entity_rows.empty:
        return entity_rows.assign(**{name: pd.Series(dtype=object) for name in names})
    keys = pd.DataFrame(
        {"row": range(len(dates)), CUSTOMER_ID: entity_rows[CUSTOMER_ID].to_numpy(), "date": dates.to_numpy()}
    )
    join = (
        f"select {', '.join(f'snapshot.{name}' for name in names)}, "
        f"snapshot.{CUSTOMER_ID} is not null as has_snapshot "
        "from entity_keys left join {source} as snapshot "
        f"on snapshot.{CUSTOMER_ID} = entity_keys.{CUSTOMER_ID} and snapshot.feature_date = entity_keys.date "
        "order by entity_keys.row"
    )
    # Through Arrow, as Feast's retrieval converts: integers with missing values become floats.
    if on_spark():
        # The engine joins; only the asked dates' partitions are read, only the rows asked for come back.
        asked = ", ".join(f"date '{date.isoformat()}'" for date in sorted(set(dates)))
        with open_warehouse() as warehouse:
            warehouse.register("entity_keys", keys)
            source = f"(select * from {SNAPSHOTS_TABLE} where feature_date in ({asked}))"
            found = warehouse.execute(join.format(source=source)).to_arrow_table().to_pandas()
            warehouse.unregister("entity_keys")
    else:
        files = [str(snapshot_file(date)) for date in sorted(set(dates))]
        with duckdb.connect() as connection:
            connection.register("entity_keys", keys)
            found = connection.sql(join.format(source="read_parquet($files)"), params={"files": files}).to_arrow_table()
            found = found.to_pandas()
    joined = pd.concat([entity_rows.reset_index(drop=True), found], axis=1)
    missing = joined[~joined.pop("has_snapshot")]
    if len(missing):
        first = missing.iloc[0]
        raise MissingSnapshotError(
            f"{len(missing)} of {len(joined)} rows have no feature snapshot of their date in {snapshots_dir()} "
            f"(first: customer {first[CUSTOMER_ID]} at {pd.Timestamp(first[date_column]).date()}): a customer known "
            "at a date has a snapshot of it in marts.customer_features_daily; rerun build_metrics and "
            "build_feature_store for that ds"
        )
    return joined


def _check_snapshot_files(dates: list[dt.date]) -> None:
    files = [snapshot_file(date) for date in dates]
    absent = [path for path in files if not path.exists()]
    if absent:
        raise MissingSnapshotError(
            f"the Feast source has no snapshot file {absent[0]} ({len(absent)} of {len(files)} dates asked for "
            "are missing): rerun build_feature_store for that ds (it exports marts.customer_features_daily)"
        )


def _check_table_dates(dates: list[dt.date]) -> None:
    if not dates:
        return
    asked = ", ".join(f"date '{date.isoformat()}'" for date in dates)
    with open_warehouse() as warehouse:
        held = warehouse.execute(
            f"select distinct feature_date from {SNAPSHOTS_TABLE} where feature_date in ({asked})"
        ).fetchall()
    absent = sorted(set(dates) - {date for (date,) in held})
    if absent:
        raise MissingSnapshotError(
            f"{SNAPSHOTS_TABLE} has no snapshot of {absent[0]} ({len(absent)} of {len(dates)} dates asked for are "
            "missing): rerun build_metrics for that ds (it builds the table Feast reads on Spark)"
        )


def historical_features(entity_rows: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join: for each (customer_id, event_timestamp) the snapshot valid at that time
    (the latest at or before it, within the view's TTL). Other columns of entity_rows pass through.
    On Spark, Feast's Spark offline store joins in the stages' session."""
    frame = entity_rows.copy()
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True).astype("datetime64[us, UTC]")
    with _session_settings_kept():
        return store().get_historical_features(entity_df=frame, features=feature_service()).to_df()


@contextmanager
def _session_settings_kept() -> Iterator[None]:
    """On Spark, Feast's offline store turns on `spark.sql.parser.quotedRegexColumnNames` in the
    session it shares with the stages (backquoted names become patterns); put it back afterwards,
    so the stages' SQL reads as before. Nothing to do on DuckDB."""
    if not on_spark():
        yield
        return
    with open_warehouse() as warehouse:
        setting = "spark.sql.parser.quotedRegexColumnNames"
        before = warehouse.session.conf.get(setting, "false")
        try:
            yield
        finally:
            warehouse.session.conf.set(setting, before)
