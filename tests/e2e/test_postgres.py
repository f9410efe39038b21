"""Airflow and MLflow really run on PostgreSQL: a nightly DAG run whose Airflow
metadata and MLflow tracking store and registry are PostgreSQL databases, on the Debian server
that `make postgres` starts (`make test` does). And Spark's metastore: tasks on the Spark engine
run side by side when they share a metastore in PostgreSQL (as in the compose profile `spark`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import psycopg2
import pytest
import yaml

from ml.paths import REPO_ROOT
from tests.e2e.test_dags import DAG_ID
from tests.helpers import END_DATE, fresh_data_dir, orchestrate, pipeline_env

STAGES = ("score_propensity", "score_recommendations")

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres")]

# The role `make postgres` creates; another server: set PZ_TEST_POSTGRES_URL.
SERVER = os.environ.get(
    "PZ_TEST_POSTGRES_URL", "postgresql+psycopg2://personalization_test:personalization_test@localhost:5432"
)


def _connect(database: str = "postgres"):
    url = SERVER.replace("postgresql+psycopg2://", "postgresql://")
    try:
        connection = psycopg2.connect(f"{url}/{database}")
    except psycopg2.OperationalError as error:
        pytest.fail(f"PostgreSQL at {SERVER} is not reachable ({error}); run `make postgres` (needs root)")
    connection.autocommit = True
    return connection


def _execute(*statements: str) -> None:
    """Statements outside a transaction (CREATE DATABASE cannot run inside one)."""
    connection = _connect()
    try:
        for statement in statements:
            connection.cursor().execute(statement)
    finally:
        connection.close()


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """Two fresh databases, Airflow's and MLflow's, dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    names = {"airflow": f"pz_airflow_{suffix}", "mlflow": f"pz_mlflow_{suffix}"}
    _execute(*(f"create database {name}" for name in names.values()))
    yield names
    _execute(*(f"drop database if exists {name} with (force)" for name in names.values()))


def _rows(database: str, sql: str) -> list[tuple]:
    connection = _connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def test_a_dag_run_with_airflow_and_mlflow_on_postgresql(small_landing, tmp_path, databases):
    data_dir = fresh_data_dir(small_landing, tmp_path, "postgres")
    env = {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{SERVER}/{databases['airflow']}",
        "MLFLOW_TRACKING_URI": f"{SERVER}/{databases['mlflow']}",
    }
    result = orchestrate(data_dir, "run", "--ds", END_DATE.isoformat(), env_extra=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # Airflow's metadata is in PostgreSQL: migrated, the pool, the run and every task.
    assert _rows(databases["airflow"], "select slots from slot_pool where pool = 'warehouse'") == [(1,)]
    runs = _rows(databases["airflow"], f"select state, logical_date from dag_run where dag_id = '{DAG_ID}'")
    assert [(state, logical_date.date()) for state, logical_date in runs] == [("success", END_DATE)]
    tasks = _rows(
        databases["airflow"], f"select task_id, map_index, state from task_instance where dag_id = '{DAG_ID}'"
    )
    assert len(tasks) >= 13 and {state for _, _, state in tasks} == {"success"}
    shards = yaml.safe_load((REPO_ROOT / "config" / "personalization.yml").read_text())["scoring"]["shards"]
    mapped = sorted((task_id, index) for task_id, index, _ in tasks if index >= 0)  # dynamic task mapping
    assert mapped == sorted((f"{stage}.score_shard", n) for stage in STAGES for n in range(shards))
    assert not (tmp_path / "airflow" / "airflow.db").exists()  # no SQLite fallback

    # MLflow's runs, models and aliases are in PostgreSQL, not in a SQLite file of the data dir.
    finished = _rows(databases["mlflow"], "select count(*) from runs where status = 'FINISHED'")[0][0]
    assert finished >= 2
    models = _rows(databases["mlflow"], "select name from registered_models order by name")
    assert models == [("propensity",), ("recommender",), ("uplift",)]
    aliases = _rows(databases["mlflow"], "select name, alias from registered_model_aliases order by name")
    # uplift is champion only when one of its arms passes the gate (not on the small data set's night)
    assert {("propensity", "champion"), ("recommender", "champion")} <= set(aliases)
    assert not (data_dir / "mlflow.db").exists()


# PostgreSQL's JDBC driver from Debian (`make system` installs libpostgresql-jdbc-java).
JDBC_DRIVER_JAR = "/usr/share/java/postgresql.jar"

# A task of a night on Spark replacing its own ds partition of marts.customer_scores. The first
# creates the table alone (and with it the metastore's schema), waits for the others and reads the
# table back through a session that stayed open all along; the others start together and each
# waits for the other's session before writing.
SPARK_TASK = """
import datetime as dt, json, sys, time
from pathlib import Path
import pandas as pd
from ml.propensity.scoring import DDL, TABLE
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import replace_partition
ds, signals, role, others = dt.date.fromisoformat(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4:]

def wait_for(*names):
    deadline = time.monotonic() + 300
    while not all((signals / name).exists() for name in names):
        assert time.monotonic() < deadline, f"waited 300 s for {names}"
        time.sleep(0.2)

def write():
    rows = pd.DataFrame({"ds": ds, "customer_id": [f"C{n}" for n in range(ds.day)], "model_name": "m",
                         "model_version": "1", "score": ds.day / 100, "decile": 1})
    replace_partition(TABLE, DDL, ds, rows, order_by="customer_id", purge_erased=False)
    (signals / f"wrote-{ds}").touch()

with open_warehouse() as warehouse:
    warehouse.execute("select 1").fetchall()  # the JVM and the metastore client are up
    if role == "first":
        write()
        wait_for(*(f"wrote-{day}" for day in others))
        warehouse.session.catalog.refreshTable(TABLE)
        held = warehouse.execute(f"select ds, count(*), min(score) from {TABLE} group by ds order by ds").fetchall()
        print(json.dumps([[str(day), rows, score] for day, rows, score in held]))
    else:  # beside the other: both up before either writes, so the writes overlap
        (signals / f"up-{ds}").touch()
        wait_for(*(f"up-{day}" for day in others))
        write()
"""


@pytest.fixture
def metastore_database() -> Iterator[str]:
    name = f"pz_metastore_{uuid.uuid4().hex[:8]}"
    _execute(f"create database {name}")
    yield name
    _execute(f"drop database if exists {name} with (force)")


def test_spark_tasks_run_side_by_side_on_a_metastore_in_postgresql(tmp_path, metastore_database):
    """Three Spark drivers at once (three JVMs: embedded Derby would admit one) on one metastore in
    PostgreSQL, each replacing only its own ds partition of the same table: what lets a Spark
    deployment give the warehouse pool more than one slot (PZ_WAREHOUSE_POOL_SLOTS)."""
    assert os.path.exists(JDBC_DRIVER_JAR), f"{JDBC_DRIVER_JAR} is missing: run `make system` (needs root)"
    server = SERVER.split("://", 1)[1]
    credentials, host = server.rsplit("@", 1)
    user, password = credentials.split(":", 1)
    env = {
        **pipeline_env(tmp_path / "data"),
        "PZ_WAREHOUSE_ENGINE": "spark",
        "PZ_SPARK_CORES": "1",
        "PZ_SPARK_SHUFFLE_PARTITIONS": "1",
        "PZ_SPARK_METASTORE_URL": f"jdbc:postgresql://{host}/{metastore_database}",
        "PZ_SPARK_METASTORE_DRIVER": "org.postgresql.Driver",
        "PZ_SPARK_METASTORE_USER": user,
        "PZ_SPARK_METASTORE_PASSWORD": password,
        "PZ_SPARK_JARS": JDBC_DRIVER_JAR,
    }
    signals = tmp_path / "signals"
    signals.mkdir()
    first, beside = "2026-10-29", ["2026-10-30", "2026-10-31"]

    def task(ds: str, role: str, *others: str) -> subprocess.Popen:
        arguments = [sys.executable, "-c", SPARK_TASK, ds, str(signals), role, *others]
        return subprocess.Popen(arguments, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    # The first task creates the metastore's schema and the table, then stays open while the
    # other two run side by side (each waits for the other's session before writing).
    tasks = [task(first, "first", *beside)]
    deadline = time.monotonic() + 300
    while not (signals / f"wrote-{first}").exists():  # the schema is made once, not three times at once
        if tasks[0].poll() is not None or time.monotonic() > deadline:
            tasks[0].kill()
            stderr = tasks[0].communicate()[1].decode()[-4000:]
            pytest.fail(f"the first Spark task did not write its partition: {stderr}")
        time.sleep(0.5)
    tasks += [task(beside[0], "beside", beside[1]), task(beside[1], "beside", beside[0])]
    outputs = [process.communicate(timeout=600) for process in tasks]
    for process, (_, stderr) in zip(tasks, outputs, strict=True):
        assert process.returncode == 0, stderr.decode()[-4000:]
    held = yaml.safe_load(outputs[0][0].decode().strip().splitlines()[-1])
    assert held == [[first, 29, 0.29], [beside[0], 30, 0.3], [beside[1], 31, 0.31]]
    tables = _rows(metastore_database, 'select "TBL_NAME" from "TBLS"')
    assert ("customer_scores",) in tables  # the catalog is PostgreSQL's, not a Derby file
    assert not (tmp_path / "data" / "spark" / "metastore_db").exists()
