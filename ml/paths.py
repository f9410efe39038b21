"""Where the platform's files are, from the environment: imports nothing from the package.

PZ_DATA_DIR (warehouse, landing, MLflow, feature store), PZ_REPORTS_DIR, PZ_CONFIG, PZ_DBT_PROJECT_DIR
and MLFLOW_TRACKING_URI; every default is under the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WAREHOUSE_FILE = "warehouse.duckdb"


def dbt_project_dir() -> Path:
    """The dbt project; PZ_DBT_PROJECT_DIR points at another copy (a fork, a test double)."""
    return Path(os.environ.get("PZ_DBT_PROJECT_DIR", REPO_ROOT / "dbt_project")).resolve()


def data_dir() -> Path:
    return Path(os.environ.get("PZ_DATA_DIR", REPO_ROOT / "data")).resolve()


def reports_dir() -> Path:
    return Path(os.environ.get("PZ_REPORTS_DIR", REPO_ROOT / "reports")).resolve()


def config_path() -> Path:
    return Path(os.environ.get("PZ_CONFIG", REPO_ROOT / "config" / "personalization.yml")).resolve()


def landing_dir() -> Path:
    return data_dir() / "landing"


def warehouse_path() -> Path:
    return data_dir() / WAREHOUSE_FILE


def mlflow_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, or a SQLite store under the data dir."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir() / 'mlflow.db'}"
