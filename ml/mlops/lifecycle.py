"""One train, evaluate, gate and register path for every model (the recommender, the propensity model).

Each model module knows its data, its fits and its metrics; this module owns what they share: the
MLflow run with its lineage tags, the registration, the gate (ml.mlops.registry) against the baseline and
the champion, and the summary the task returns (an Airflow XCom) that says which served and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import mlflow
import pandas as pd
from mlflow import MlflowClient

from ml.mlops.registry import ChampionCheck, GateDecision, gate
from ml.mlops.settings import ChampionGateConfig
from ml.mlops.tracking import BundledModel, frame_hash, git_commit, log_and_register, use_experiment
from ml.paths import mlflow_tracking_uri

log = logging.getLogger(__name__)


def skipped(model_name: str, ds: str, reason: str) -> dict[str, object]:
    """The summary of a night that could not train: one line of what the data lacks and what to change."""
    log.warning("%s ds=%s skipped: %s", model_name, ds, reason)
    return {"status": "skipped", "reason": reason}


@contextmanager
def training_run(model_name: str, ds: str, training_rows: pd.DataFrame) -> Iterator[mlflow.ActiveRun]:
    """The model's MLflow run for ds, tagged with ds, the commit and a hash of the training rows."""
    experiment_id = use_experiment(model_name)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{model_name} ds={ds}") as run:
        mlflow.set_tags({"ds": ds, "git_commit": git_commit(), "training_data_sha256": frame_hash(training_rows)})
        yield run


def register_and_gate(
    model_name: str,
    ds: str,
    python_model: BundledModel,
    bundle: object,
    input_example: pd.DataFrame,
    requirements: list[str],
    model_value: float,
    baseline: tuple[str, float],
    evaluate_champion: Callable[[object], ChampionCheck],
    config: ChampionGateConfig,
) -> GateDecision:
    """Log the bundle as a pyfunc, register it under `model_name`, and pass it through the gate."""
    version = log_and_register(model_name, python_model, bundle, input_example, ds, requirements)
    decision = gate(MlflowClient(), model_name, version, model_value, baseline, evaluate_champion, config)
    mlflow.log_metrics({f"gate_{config.metric}": model_value, f"gate_baseline_{config.metric}": baseline[1]})
    return decision


def trained(run: mlflow.ActiveRun, decision: GateDecision, **metrics: float) -> dict[str, object]:
    """The summary of a night that trained: the version, whether it serves, why, and the numbers."""
    return {
        "status": "trained",
        "run_id": run.info.run_id,
        "version": decision.version,
        "promoted": decision.promoted,
        "serves": decision.serves,
        "serving_version": decision.serving_version,
        "reason": decision.reason,
        "gate": decision.summary,
        **metrics,
    }


def reused(model_name: str, ds: str, version: str, reason: str) -> dict[str, object]:
    """The summary of a night that had nothing new to learn: version `version` goes on serving as
    the registry decided. Recorded as a run of ds (tags reused_version, reuse_reason) for the reports."""
    log.info("%s ds=%s: no new version, v%s stays: %s", model_name, ds, version, reason)
    mlflow.set_tags({"reused_version": str(version), "reuse_reason": reason})
    return {"status": "reused", "version": str(version), "reason": reason}


def latest_run(model_name: str, ds: str):
    """The newest MLflow run of a model's experiment for ds, or None."""
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    client = MlflowClient()
    experiment = client.get_experiment_by_name(model_name)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id], f"tags.ds = '{ds}'", order_by=["start_time DESC"], max_results=1
    )
    return runs[0] if runs else None


def gate_line(model_name: str, tags: dict[str, str]) -> str | None:
    """The gate's decision on the version a run registered: champion or not, what serves and why
    (the nightly summary and the KPI report print it); None when the run registered nothing."""
    if "reused_version" in tags:
        return f"{model_name}: no new version tonight, v{tags['reused_version']} stays ({tags['reuse_reason']})"
    if "gate_version" not in tags:
        return None
    verdict = "champion" if tags.get("gate_promoted") == "True" else "challenger"
    serves = (
        f"v{tags['gate_serving_version']} serves"
        if tags.get("gate_serves") == "model"
        else f"the {tags.get('gate_baseline', 'baseline')} baseline serves: no version beats it"
    )
    return f"registered {model_name} v{tags['gate_version']}: {verdict}; {serves} ({tags.get('gate_reason', '')})"
