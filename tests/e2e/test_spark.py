"""A whole night on Spark: the same landing files give the same tables, files and models as on DuckDB.

Two data dirs get the same small landing files; each runs the nightly pipeline for two days, one
with `PZ_WAREHOUSE_ENGINE=duckdb` (the embedded default), the other with `spark` (a local Spark
session: the landing loader, dbt's spark target, every Python stage). The first night runs through
the day's decisions (what the second night reads back: models, scores, assignments); the second
runs every stage and takes the incremental paths (partitions kept per ds, the lookback windows of
the daily facts, warm-started fits, the program readout and frequency caps over the first night's
assignments). Then every table of the two warehouses, every exported file and the registered
models' metrics are compared. (The first night's drift, exports, output checks and KPI report
would cost Spark four more minutes and run no SQL the second night does not.)

Each pipeline night is its own process, as in a nightly run; Spark's catalog and warehouse live
under the data dir (dbt_project/profiles.yml, output spark).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from ml.paths import REPO_ROOT
from tests.helpers import END_DATE, export_digests, fresh_data_dir, pipeline_env

pytestmark = pytest.mark.xdist_group("spark")

DATES = [(END_DATE - dt.timedelta(days=1)).isoformat(), END_DATE.isoformat()]
NIGHTS = {DATES[0]: ["--through", "decide_audiences"], DATES[1]: []}
# The local session sized for the small data set beside the suite's other worker: one core (two made
# the whole suite slower: the session's threads took the core the other worker's tests ran on) and
# one shuffle partition (its queries are latency, not volume).
SMALL_SPARK = {"PZ_SPARK_CORES": "1", "PZ_SPARK_SHUFFLE_PARTITIONS": "1"}
ENGINES = ("duckdb", "spark")
# Columns that record when a row was written, not what it says: the load time of a landing file.
WRITE_TIMES = {"raw.landing_files": ["loaded_at"]}
# Model metrics are compared within this tolerance. Both engines hand the models the same rows in
# the same order and the fits are seeded, so they agree to the last digit today; the tolerance
# allows for what is not promised across engines: the last bits of a sum over a different number of
# partitions (Spark adds in parallel, DuckDB in its own order) feeding a feature.
METRIC_TOLERANCE = 1e-6


def run_night(data_dir: Path, engine: str, ds: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ml", "pipeline", "--ds", ds, *NIGHTS[ds]],
        cwd=REPO_ROOT,
        env={**pipeline_env(data_dir), "PZ_WAREHOUSE_ENGINE": engine, **SMALL_SPARK},
        capture_output=True,
        text=True,
        timeout=2400,
    )


# Session scope: under xdist's loadgroup a module fixture can be built again when the worker
# runs another module's tests in between.
@pytest.fixture(scope="session")
def two_engines(small_landing, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("engines")
    data_dirs = {}
    for engine in ENGINES:
        data_dir = fresh_data_dir(small_landing, root, engine)
        for ds in DATES:
            result = run_night(data_dir, engine, ds)
            assert result.returncode == 0, (
                f"{engine} night {ds} failed:\n{result.stdout[-3000:]}{result.stderr[-5000:]}"
            )
        data_dirs[engine] = data_dir
    return data_dirs


def duckdb_tables(data_dir: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        names = connection.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema <> 'main' order by 1"
        ).fetchall()
        return {name: connection.execute(f"select * from {name}").df() for (name,) in names}


SPARK_EXPORT = """
import sys
from pathlib import Path
import pyarrow.parquet as pq
from ml.warehouse.spark import spark_session
spark, folder = spark_session(), Path(sys.argv[1])
for database in spark.catalog.listDatabases():
    if database.name == "default":
        continue
    for table in spark.catalog.listTables(database.name):
        name = f"{database.name}.{table.name}"
        pq.write_table(spark.table(name).toArrow(), folder / f"{name}.parquet")
"""


def spark_tables(data_dir: Path) -> dict[str, pd.DataFrame]:
    folder = data_dir / "spark_tables"
    folder.mkdir(exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", SPARK_EXPORT, str(folder)],
        cwd=REPO_ROOT,
        env={**pipeline_env(data_dir), "PZ_WAREHOUSE_ENGINE": "spark", **SMALL_SPARK},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return {path.stem: pd.read_parquet(path) for path in sorted(folder.glob("*.parquet"))}


NUMBER_TYPES = (bool, int, float, Decimal, np.number, np.bool_)


def normalized(frame: pd.DataFrame, data_dir: Path) -> pd.DataFrame:
    """Comparable across engines: columns by name; numbers, decimals and booleans as floats rounded
    to 6 decimals (Spark and DuckDB may differ in the last bits); dates and timestamps as naive
    timestamps; lists (of text or numbers) as text; the data dir in paths as `<data_dir>`; rows sorted."""
    frame = frame[sorted(frame.columns)].copy()
    for column in frame.columns:
        values = frame[column]
        present = values.dropna()
        if pd.api.types.is_datetime64_any_dtype(values):
            frame[column] = pd.to_datetime(values).dt.tz_localize(None).astype("datetime64[us]")
        elif len(present) and present.map(lambda v: isinstance(v, dt.date)).all():
            frame[column] = pd.to_datetime(values).astype("datetime64[us]")
        elif len(present) == 0 or present.map(lambda v: isinstance(v, NUMBER_TYPES)).all():
            frame[column] = values.map(lambda v: np.nan if v is None or pd.isna(v) else round(float(v), 6))
        elif present.map(lambda v: isinstance(v, list | np.ndarray)).all():
            frame[column] = values.map(
                lambda v: None if v is None or not hasattr(v, "__len__") else "|".join(map(str, v))
            )
        else:
            frame[column] = values.map(lambda v: v.replace(str(data_dir), "<data_dir>") if isinstance(v, str) else v)
    return frame.sort_values(list(frame.columns), na_position="first").reset_index(drop=True)


@pytest.mark.slow
def test_a_night_on_spark_writes_every_table_of_a_night_on_duckdb_with_the_same_rows(two_engines):
    on_duckdb, on_spark = duckdb_tables(two_engines["duckdb"]), spark_tables(two_engines["spark"])
    assert sorted(on_spark) == sorted(on_duckdb)
    # Both nights are in the tables that keep a partition per ds, on both engines.
    assert sorted(on_spark["marts.customer_scores"]["ds"].astype(str).unique()) == DATES
    assert len(on_duckdb) > 60 and len(on_duckdb["channels.email"]) > 0
    differing = []
    for name in on_duckdb:
        expected = normalized(on_duckdb[name].drop(columns=WRITE_TIMES.get(name, [])), two_engines["duckdb"])
        actual = normalized(on_spark[name].drop(columns=WRITE_TIMES.get(name, [])), two_engines["spark"])
        if list(actual.columns) != list(expected.columns) or len(actual) != len(expected):
            differing.append(
                f"{name}: columns or row counts differ ({len(actual)} on Spark, {len(expected)} on DuckDB)"
            )
            continue
        if expected.empty:  # no rows: nothing more to compare (an empty column has no values to type)
            continue
        for column in expected.columns:
            left, right = expected[column], actual[column]
            same = (
                np.allclose(left, right, rtol=1e-9, atol=1e-6, equal_nan=True)
                if pd.api.types.is_float_dtype(left) and pd.api.types.is_float_dtype(right)
                else left.equals(right)
            )
            if not same:
                differing.append(f"{name}.{column}:\n{pd.concat([left, right], axis=1)[left.ne(right)].head(3)}")
    assert not differing, "tables differ between the engines:\n" + "\n".join(differing)


FEATURES_SERVED = """
import json, sys
import pandas as pd
from ml.mlops.feature_store import historical_features, snapshot_features, snapshots_dir
from ml.warehouse.engine import open_warehouse, read_frame
with open_warehouse() as warehouse:
    customers = read_frame(warehouse, "select customer_id from marts.customer_features_daily "
                           f"where feature_date = date '{sys.argv[1]}' order by customer_id limit 30")["customer_id"]
    rows = read_frame(warehouse, "select customer_id, feature_date as cutoff, feature_timestamp as event_timestamp "
                      "from marts.customer_features_daily where customer_id in ("
                      + ", ".join(f"'{customer}'" for customer in customers) + ")")
key = ["customer_id", "cutoff"]
served = []
for frame in (snapshot_features(rows, "cutoff"), historical_features(rows)):
    frame = frame.drop(columns="event_timestamp")
    frame["cutoff"] = pd.to_datetime(frame["cutoff"]).dt.date.astype(str)
    served.append(frame.sort_values(key).reset_index(drop=True))
files = len(list(snapshots_dir().glob("*.parquet")))
print(json.dumps({"snapshots": served[0].to_dict("records"), "point_in_time": served[1].to_dict("records"),
                  "snapshot_files": files}, default=str))
"""


def features_served(data_dir: Path, engine: str) -> dict[str, object]:
    """What training reads (snapshot_features) and Feast's point-in-time join (historical_features)
    give for every snapshot of 30 customers, and how many parquet snapshot files the data dir holds."""
    result = subprocess.run(
        [sys.executable, "-c", FEATURES_SERVED, DATES[-1]],
        cwd=REPO_ROOT,
        env={**pipeline_env(data_dir), "PZ_WAREHOUSE_ENGINE": engine, **SMALL_SPARK},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_feast_on_spark_joins_the_warehouse_table_as_feast_on_duckdb_joins_the_exported_files(two_engines):
    """On Spark the Feast offline store is the table itself (Feast's Spark offline store, nothing
    exported); its point-in-time join, training's snapshot reads and DuckDB's all agree."""
    served = {engine: features_served(two_engines[engine], engine) for engine in ENGINES}
    assert served["spark"]["snapshot_files"] == 0 and served["duckdb"]["snapshot_files"] > 5
    frames = {
        (engine, way): pd.DataFrame(served[engine][way]) for engine in ENGINES for way in ("snapshots", "point_in_time")
    }
    expected = frames[("duckdb", "snapshots")]
    assert len(expected) > 30 and expected["cutoff"].nunique() > 5
    for key, frame in frames.items():
        pd.testing.assert_frame_equal(frame[expected.columns], expected, check_dtype=False, rtol=1e-9, obj=str(key))


def manifests_without_times(data_dir: Path) -> dict[str, dict]:
    return {
        str(path.relative_to(data_dir / "exports")): json.loads(path.read_text())
        for path in sorted((data_dir / "exports").rglob("manifest.json"))
    }


@pytest.mark.slow
def test_a_night_on_spark_exports_the_same_files_byte_for_byte(two_engines):
    on_duckdb, on_spark = export_digests(two_engines["duckdb"]), export_digests(two_engines["spark"])
    assert {path.split("/")[0] for path in on_duckdb} == {"email", "push", "web", "call_center"}
    assert on_spark == on_duckdb  # the audience files and the manifests (which hold no write times)
    assert manifests_without_times(two_engines["spark"]) == manifests_without_times(two_engines["duckdb"])


def registered_metrics(data_dir: Path) -> dict[tuple[str, str], dict[str, float]]:
    client = MlflowClient(tracking_uri=f"sqlite:///{data_dir / 'mlflow.db'}")
    metrics = {}
    for name in ("recommender", "propensity"):
        for version in client.search_model_versions(f"name = '{name}'"):
            metrics[(name, version.version)] = client.get_run(version.run_id).data.metrics
    return metrics


@pytest.mark.slow
def test_the_models_trained_on_spark_score_as_those_trained_on_duckdb(two_engines):
    on_duckdb, on_spark = registered_metrics(two_engines["duckdb"]), registered_metrics(two_engines["spark"])
    assert sorted(on_spark) == sorted(on_duckdb) and len(on_duckdb) >= 2
    for key, expected in on_duckdb.items():
        assert sorted(on_spark[key]) == sorted(expected), key
        for metric, value in expected.items():
            assert on_spark[key][metric] == pytest.approx(value, rel=METRIC_TOLERANCE, abs=METRIC_TOLERANCE), (
                f"{key} {metric}: {on_spark[key][metric]} on Spark, {value} on DuckDB"
            )
