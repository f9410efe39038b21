"""Airflow and MLflow really run on PostgreSQL: a nightly DAG run whose Airflow
metadata and MLflow tracking store and registry are PostgreSQL databases, on the Debian server
that `make postgres` starts (`make test` does)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg2
import pytest
import yaml

from ml.paths import REPO_ROOT
from tests.conftest import END_DATE, fresh_data_dir, orchestrate
from tests.e2e.test_dags import DAG_ID

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
    assert models == [("propensity",), ("recommender",)]
    aliases = _rows(databases["mlflow"], "select name, alias from registered_model_aliases order by name")
    assert aliases == [("propensity", "champion"), ("recommender", "champion")]
    assert not (data_dir / "mlflow.db").exists()
