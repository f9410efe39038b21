"""What the tests share besides fixtures: the small data set's settings, and running the platform's
command line and Python code against a data directory in a fresh process, as a DAG task would.

Warehouses are built by the real CLI in a subprocess (`python -m ml pipeline`), so each test data
set has its own PZ_DATA_DIR and dbt's in-process connection cache never mixes two warehouses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

from ml.paths import REPO_ROOT
from ml.synthetic.settings import GeneratorSettings

END_DATE = dt.date(2026, 10, 31)
SMALL = GeneratorSettings(customers=1_500, days=120, end_date=END_DATE, bad_row_rate=0.01, seed=7)


def pipeline_env(data_dir: Path) -> dict[str, str]:
    """The environment of a pipeline process on data_dir, with its own MLflow store under it.
    MLFLOW_TRACKING_URI is dropped: mlflow.set_tracking_uri() in a test exports it to os.environ,
    and a subprocess inheriting it would read another data set's registry."""
    inherited = {name: value for name, value in os.environ.items() if name != "MLFLOW_TRACKING_URI"}
    return {**inherited, "PZ_DATA_DIR": str(data_dir), "PZ_REPORTS_DIR": str(data_dir / "reports")}


def run_pipeline(data_dir: Path, ds: str, models: bool = True, *options: str) -> subprocess.CompletedProcess:
    """Run the pipeline CLI for `ds` on `data_dir` with `options`; the result carries exit code and output.
    Without `models`, only the warehouse is built (tests of the data layers need no model runs)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ml",
            "pipeline",
            "--ds",
            ds,
            *([] if models else ["--warehouse-only"]),
            *options,
        ],
        cwd=REPO_ROOT,
        env=pipeline_env(data_dir),
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_python(data_dir: Path, code: str, *arguments: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -c code arguments...` against data_dir's stores in a fresh process (its own dbt
    and DuckDB state, like a DAG task); the result carries exit code and output."""
    return subprocess.run(
        [sys.executable, "-c", code, *arguments],
        cwd=REPO_ROOT,
        env=pipeline_env(data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def orchestrate(data_dir: Path, *arguments: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m ml arguments...` on data_dir (env_extra overrides the environment)."""
    return subprocess.run(
        [sys.executable, "-m", "ml", *arguments],
        cwd=REPO_ROOT,
        env={**pipeline_env(data_dir), **(env_extra or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )


def fresh_data_dir(small_landing: Path, tmp_path: Path, name: str) -> Path:
    """A new data dir holding a copy of the small data set's landing files only."""
    data_dir = tmp_path / name
    shutil.copytree(small_landing / "landing", data_dir / "landing")
    return data_dir


def copy_night(source: Path, target: Path) -> Path:
    """A copy of a built data directory that is a warehouse of its own (tests/e2e/test_erasure.py
    shows it). Its MLflow store still names the source's artifacts until a stage opens it: it is
    opened here, so a test that reads or breaks a model version's files touches its copy only."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("built.ok"))
    relocated = run_python(target, "from ml.mlops.tracking import use_experiment; use_experiment('recommender')")
    assert relocated.returncode == 0, relocated.stderr[-3000:]
    return target


def query(data_dir: Path, sql: str, parameters: list | None = None) -> pd.DataFrame:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        return connection.execute(sql, parameters or []).df()


def export_digests(data_dir: Path) -> dict[str, str]:
    """sha256 of every file under the data dir's exports/, by relative path."""
    root = data_dir / "exports"
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def service_client(serving_root: Path, landing: Path, token: str | None = None, **settings):
    """The online service on a serving folder, in this process (FastAPI's TestClient; use it as a
    context manager so that its start-up and shutdown run), writing events under `landing`."""
    from fastapi.testclient import TestClient

    from ml.orchestration.cli import service_app
    from ml.serving.settings import ServingConfig

    app = service_app(ServingConfig(reload_seconds=0.05, **settings), token, serving_root, landing)
    return TestClient(app, raise_server_exceptions=False)
