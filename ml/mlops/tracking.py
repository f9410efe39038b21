"""MLflow plumbing shared by every model: where runs go, and the lineage every run carries."""

from __future__ import annotations

import hashlib
import logging
import pickle
import subprocess
import tempfile
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from ml.paths import REPO_ROOT, data_dir, mlflow_tracking_uri


def relocate_copied_store(name: str, artifact_location: str) -> bool:
    """Make a copied data directory's MLflow store point at its own artifacts.

    MLflow records absolute artifact locations (experiments, runs, logged models, model versions).
    In a copy of a data directory (a restore into another folder, a staging copy) they still named
    the original's folder, so the copy's runs wrote into the original and its models loaded the
    original's files. When the experiment's location is another folder's `mlartifacts/<name>`,
    every location under that folder is rewritten to this data directory's, in the SQLite store
    that this data directory owns (a tracking server keeps its own locations: nothing to do).
    Returns whether anything was rewritten."""
    import sqlite3

    uri = mlflow_tracking_uri()
    here = (data_dir() / "mlartifacts").as_uri() + "/"
    suffix = f"/mlartifacts/{name}"
    if not uri.startswith("sqlite:///") or not artifact_location.endswith(suffix):
        return False
    there = artifact_location[: -len(suffix)] + "/mlartifacts/"
    if there == here:
        return False
    columns = {"experiments": "artifact_location", "runs": "artifact_uri", "logged_models": "artifact_location",
               "model_versions": "storage_location"}  # fmt: skip
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as connection:
        tables = {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}
        for table, column in columns.items():
            if table in tables:
                connection.execute(
                    # A prefix compared as text: LIKE would read _ and % in a path as wildcards.
                    f"update {table} set {column} = ? || substr({column}, ?) where substr({column}, 1, ?) = ?",
                    [here, len(there) + 1, len(there), there],
                )
    logging.getLogger(__name__).warning(
        "MLflow store %s was copied from another data directory: artifact locations moved from %s to %s",
        uri,
        there,
        here,
    )
    return True


EXPERIMENT_KIND = "mlflow.experimentKind"
TRAINING_RUNS = "custom_model_development"  # the UI's "machine learning" kind: it opens on the runs


def use_experiment(name: str) -> str:
    """Point MLflow at the platform's store and make `name` the active experiment (nested runs go to
    the active experiment, not their parent's), creating it with its artifacts under the data dir
    (the default would be ./mlruns of whatever the working directory is). Returns its id."""
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None and relocate_copied_store(name, experiment.artifact_location):
        experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        artifacts = data_dir() / "mlartifacts" / name
        artifacts.mkdir(parents=True, exist_ok=True)
        experiment_id = mlflow.create_experiment(name, artifact_location=artifacts.as_uri())
    else:
        experiment_id = experiment.experiment_id
    if experiment is None or experiment.tags.get(EXPERIMENT_KIND) != TRAINING_RUNS:
        # Without it MLflow 3's UI asks for the experiment's type and opens on its GenAI traces page.
        mlflow.MlflowClient().set_experiment_tag(experiment_id, EXPERIMENT_KIND, TRAINING_RUNS)
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


# Floats are hashed to this many decimals: a sum the engine takes in parallel differs in its last bits
# from run to run (measured: the recommender's interaction weights of the same night, read twice).
HASH_DECIMALS = 9


def frame_hash(frame: pd.DataFrame) -> str:
    """sha256 of a frame's rows whatever their order (pandas' stable per-row hash, sorted), floats to
    HASH_DECIMALS decimals: same data, same hash. A rerun reads the same rows, maybe in another order
    and with other last bits in its sums, and the registry's reuse of a version
    (ml.mlops.lifecycle.version_trained_as) must still recognise them."""
    floats = frame.select_dtypes("floating").columns
    rounded = frame.assign(**{column: frame[column].round(HASH_DECIMALS) for column in floats})
    row_hashes = np.sort(pd.util.hash_pandas_object(rounded, index=False).to_numpy())
    return hashlib.sha256(row_hashes.tobytes()).hexdigest()


def pinned(*distributions: str) -> list[str]:
    """pip requirements pinned to the versions installed here (MLflow would otherwise infer them, slowly)."""
    return [f"{name}=={version(name)}" for name in distributions]


BUNDLE_ARTIFACT = "bundle"


class BundledModel(mlflow.pyfunc.PythonModel):
    """A pyfunc whose fitted state is one pickled object, `self.bundle` (see log_and_register)."""

    def load_context(self, context) -> None:
        with open(context.artifacts[BUNDLE_ARTIFACT], "rb") as handle:
            self.bundle = pickle.load(handle)


def log_and_register(
    model_name: str,
    python_model: BundledModel,
    bundle,
    example: pd.DataFrame,
    ds: str,
    requirements: list[str],
):
    """Log `python_model` (with `bundle` pickled as its artifact and set on it, so the
    signature comes from a real prediction) in the active run, register it as `model_name`, tag the
    version with the ds it was trained for, and return the version."""
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    python_model.bundle = bundle
    with tempfile.TemporaryDirectory() as scratch:
        bundle_path = Path(scratch) / "bundle.pkl"
        with open(bundle_path, "wb") as handle:
            pickle.dump(bundle, handle, protocol=pickle.HIGHEST_PROTOCOL)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=python_model,
            artifacts={BUNDLE_ARTIFACT: str(bundle_path)},
            signature=infer_signature(example, python_model.predict(None, example)),
            input_example=example,
            code_paths=[str(REPO_ROOT / "ml")],  # the model loads without this checkout
            pip_requirements=pinned(*requirements),
            registered_model_name=model_name,
        )
    client = MlflowClient()
    version = client.get_model_version(model_name, info.registered_model_version)
    client.set_model_version_tag(model_name, version.version, "ds", ds)
    return version
