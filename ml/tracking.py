"""MLflow plumbing shared by every model: where runs go, and the lineage every run carries."""

from __future__ import annotations

import hashlib
import subprocess
from importlib.metadata import version

import mlflow
import pandas as pd

from ml.config import REPO_ROOT, data_dir, mlflow_tracking_uri


def use_experiment(name: str) -> str:
    """Point MLflow at the platform's store and make `name` the active experiment (nested runs go to
    the active experiment, not their parent's), creating it with its artifacts under the data dir
    (the default would be ./mlruns of whatever the working directory is). Returns its id."""
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        artifacts = data_dir() / "mlartifacts" / name
        artifacts.mkdir(parents=True, exist_ok=True)
        experiment_id = mlflow.create_experiment(name, artifact_location=artifacts.as_uri())
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_commit() -> str:
    """The commit of the code that trains, or 'unknown' outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    ).stdout.strip()
    return head.stdout.strip() + ("-dirty" if dirty else "")


def frame_hash(frame: pd.DataFrame) -> str:
    """sha256 of a frame's rows in order (pandas' stable per-row hash): same data, same hash."""
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(row_hashes.tobytes()).hexdigest()


def pinned(*distributions: str) -> list[str]:
    """pip requirements pinned to the versions installed here (MLflow would otherwise infer them, slowly)."""
    return [f"{name}=={version(name)}" for name in distributions]
