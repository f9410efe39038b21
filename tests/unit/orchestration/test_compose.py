"""What can be checked of docker-compose.yml without a Docker engine: it parses,
the stack is complete, every long-running service has a health check and a restart policy, every
variable it reads is documented in .env.example, and no secret value is committed."""

from __future__ import annotations

import re

import pytest
import yaml

from ml.orchestration.dag_runs import WAREHOUSE_POOL
from ml.paths import REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
SERVICES = {
    "postgres",
    "redis",
    "mlflow",
    "decision-service",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "spark-master",
    "spark-worker",
}
ONE_SHOT = {"airflow-init"}
SPARK_PROFILE = {"spark-master", "spark-worker"}
# ${NAME}, ${NAME:-default}, ${NAME:?message}; $${NAME} is the container's own variable, not compose's.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")
SECRETS = {
    "POSTGRES_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "MLFLOW_ADMIN_PASSWORD",
    "PZ_API_TOKEN",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def documented_variables() -> dict[str, str]:
    """NAME=value lines of .env.example that follow a comment line."""
    variables, commented = {}, False
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.startswith("#"):
            commented = commented or not line.startswith("# ---")
        elif "=" in line:
            name, value = line.split("=", 1)
            assert commented, f".env.example: {name} has no comment saying what it is"
            variables[name] = value
            commented = False
    return variables


def test_the_stack_is_complete(compose):
    assert set(compose["services"]) == SERVICES
    common = compose["x-airflow-common"]["environment"]
    assert common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert common["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert common["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert common["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    mlflow_command = " ".join(compose["services"]["mlflow"]["command"])
    assert (
        "--backend-store-uri=postgresql+psycopg2://" in mlflow_command and "--artifacts-destination" in mlflow_command
    )
    mounts = {volume.split(":")[1] for volume in compose["x-airflow-common"]["volumes"]}
    assert {"/data", "/data/exports", "/reports"} <= mounts
    assert {"postgres", "mlartifacts", "data", "exports", "reports"} <= set(compose["volumes"])


def test_every_service_has_a_health_check_and_a_restart_policy(compose):
    for name, service in compose["services"].items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            continue
        assert service["healthcheck"]["test"], f"{name} has no health check"
        assert service["restart"] in {"always", "unless-stopped", "on-failure"}, f"{name}: restart policy"


def test_airflow_services_wait_for_their_dependencies(compose):
    for name, service in compose["services"].items():
        if name.startswith("airflow-") and name not in ONE_SHOT:
            waits = service["depends_on"]
            assert waits["airflow-init"]["condition"] == "service_completed_successfully", name
            assert waits["postgres"]["condition"] == "service_healthy", name
            assert waits["redis"]["condition"] == "service_healthy", name
    init = " ".join(compose["services"]["airflow-init"]["command"])
    assert "python -m ml setup" in init  # db migrate and the `warehouse` pool, in one place
    assert WAREHOUSE_POOL == "warehouse"


def test_every_variable_is_documented_and_no_secret_is_committed():
    used = set(VARIABLE.findall(COMPOSE.read_text()))
    documented = documented_variables()
    assert used - set(documented) == set(), "used in docker-compose.yml, missing from .env.example"
    assert set(documented) - used == set(), "documented in .env.example, unused by docker-compose.yml"
    assert used >= SECRETS
    for name in SECRETS:
        assert documented[name] == "", f".env.example must not hold a value for the secret {name}"
        assert re.search(rf"\$\{{{name}(:\?[^}}]*)?\}}", COMPOSE.read_text()), f"{name} needs no default"
    assert ".env" in (REPO_ROOT / ".gitignore").read_text().splitlines()


def test_the_spark_profile_is_a_cluster_the_tasks_share(compose):
    """PZ_WAREHOUSE_ENGINE=spark with `--profile spark`: the tasks' drivers reach the master, every
    node sees the tables at the same path, and the metastore is a database of the stack's PostgreSQL
    (the Derby default admits one process; tasks side by side need a shared one)."""
    services = compose["services"]
    assert {name for name, service in services.items() if "spark" in service.get("profiles", [])} == SPARK_PROFILE
    environment = compose["x-airflow-common"]["environment"]
    assert environment["PZ_WAREHOUSE_ENGINE"] == "${PZ_WAREHOUSE_ENGINE:-duckdb}"
    assert "spark://spark-master:7077" in environment["PZ_SPARK_MASTER"]
    assert (
        "7077" in services["spark-master"]["command"]
        and "spark://spark-master:7077" in services["spark-worker"]["command"]
    )
    warehouse = environment["PZ_SPARK_WAREHOUSE_DIR"]
    for volumes in (compose["x-airflow-common"]["volumes"], services["spark-worker"]["volumes"]):
        assert f"spark-warehouse:{warehouse}" in volumes
    assert environment["PZ_SPARK_METASTORE_URL"].startswith("jdbc:postgresql://postgres:5432/")
    assert "SPARK_METASTORE_DB" in (REPO_ROOT / "deploy/postgres/init-databases.sh").read_text()
    assert "postgresql.jar" in environment["PZ_SPARK_JARS"]
    assert "/opt/spark-jars/postgresql.jar" in (REPO_ROOT / "deploy/Dockerfile").read_text()
    # Every PZ_SPARK_* setting of the stack is one dbt's spark target (and so the Python stages) reads.
    profile = (REPO_ROOT / "dbt_project/profiles.yml").read_text()
    for name in environment:
        if name.startswith("PZ_SPARK_"):
            assert f"env_var('{name}'" in profile, (
                f"{name} is set for the tasks but dbt_project/profiles.yml never reads it"
            )


def test_every_ui_listens_on_this_host_only_and_mlflow_needs_a_login(compose):
    """Published ports bind to PZ_BIND_ADDRESS, 127.0.0.1 unless set; MLflow runs its basic-auth app
    (its bundles hold customer ids) and the tasks log in to it."""
    published = {name: port for name, service in compose["services"].items() for port in service.get("ports", [])}
    assert set(published) >= {"mlflow", "airflow-apiserver", "spark-master"}
    for name, port in published.items():
        assert str(port).startswith("${PZ_BIND_ADDRESS:-127.0.0.1}:"), f"{name} publishes {port} on every interface"
    mlflow = compose["services"]["mlflow"]
    assert "--app-name=basic-auth" in mlflow["command"]
    ini = REPO_ROOT / mlflow["environment"]["MLFLOW_AUTH_CONFIG_PATH"].removeprefix("/opt/personalization/")
    assert "authenticate_request_basic_auth" in ini.read_text() and "/mlflow-auth/" in ini.read_text()
    assert "mlflow-auth:/mlflow-auth" in mlflow["volumes"]
    environment = compose["x-airflow-common"]["environment"]
    assert environment["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD")


def test_the_decision_service_needs_a_token_and_is_published_on_this_host_only(compose):
    service = compose["services"]["decision-service"]
    assert service["environment"]["PZ_API_TOKEN"].startswith("${PZ_API_TOKEN:?")
    assert all(port.startswith("${PZ_BIND_ADDRESS:-127.0.0.1}:") for port in service["ports"])
    assert "data:/data" in service["volumes"] and "/health" in " ".join(service["healthcheck"]["test"])
    assert service["command"][:4] == ["python", "-m", "ml", "serve"]
