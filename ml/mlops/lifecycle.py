"""One train, evaluate, gate and register path for every model (the recommender, the propensity model).

Each model module knows its data, its fits and its metrics; this module owns what they share: the
MLflow run with its lineage tags, the registration, the gate (ml.mlops.registry) against the baseline and
the champion, and the summary the task returns (an Airflow XCom) that says which served and why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import mlflow
import pandas as pd
from mlflow import MlflowClient

from ml.mlops.registry import (
    ARTIFACT_ERROR,
    BASELINE,
    ChampionCheck,
    GateDecision,
    PerCustomer,
    Serving,
    gate,
    mark_interrupted,
    mark_unreadable,
    serving_for,
    unreadable_fix,
    usable,
)
from ml.mlops.settings import ChampionGateConfig
from ml.mlops.tracking import BundledModel, frame_hash, git_commit, log_and_register, use_experiment
from ml.paths import mlflow_tracking_uri

log = logging.getLogger(__name__)


FINGERPRINT = "training_fingerprint"


def training_fingerprint(*parts: str) -> str:
    """What a fit's result depends on (its rows' hash, its configuration, ...) and the code's commit."""
    return hashlib.sha256("\n".join((*parts, git_commit())).encode()).hexdigest()[:16]


def version_trained_as(model_name: str, fingerprint: str, ds: dt.date, load: Callable[[str], object] | None = None):
    """The registered version trained for ds or earlier exactly as tonight would train (same rows,
    configuration and code), or None. A rerun of a ds, or a night with nothing new, reuses it: no new
    registration, no alias moved. A version trained for a later ds is never reused: it may not serve
    an earlier one (ml.mlops.registry.serving_for), so a backfill behind it trains its own. With
    `load`, its artifact is loaded first: one that cannot be is demoted (tag artifact_error) and not
    reused, so tonight trains a version that can serve."""
    use_experiment(model_name)  # a copied data directory's store points at its own artifacts first
    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{model_name}'")
    except mlflow.exceptions.MlflowException:
        return None
    same = [
        v
        for v in versions
        if v.tags.get(FINGERPRINT) == fingerprint
        and usable(v)
        and "ds" in v.tags
        and dt.date.fromisoformat(v.tags["ds"]) <= ds
    ]
    if not same:
        return None
    newest = max(same, key=lambda v: int(v.version))
    if load is not None and demoted_unless_loads(client, model_name, newest, load, newest.tags.get("ds", "")):
        return None  # tonight trains a version that can serve
    return newest


def demoted_unless_loads(client, model_name: str, version, load: Callable[[str], object], ds: str) -> str | None:
    """Load the version's artifact; when it cannot be loaded (truncated, deleted, written by code that
    no longer reads it), demote the version and return the line that says so (None when it loads)."""
    try:
        load(f"models:/{model_name}/{version.version}")
    except Exception as error:
        return mark_unreadable(client, model_name, str(version.version), error, ds)
    return None


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
    per_customer: PerCustomer | None = None,
) -> GateDecision:
    """Log the bundle as a pyfunc, register it under `model_name`, and pass it through the gate. A
    version a killed run left without a gate decision is marked first (it never serves)."""
    client = MlflowClient()
    mark_interrupted(client, model_name)
    version = log_and_register(model_name, python_model, bundle, input_example, ds, requirements)
    fingerprint = client.get_run(version.run_id).data.tags.get(FINGERPRINT)
    if fingerprint:
        client.set_model_version_tag(model_name, version.version, FINGERPRINT, fingerprint)
    decision = gate(client, model_name, version, model_value, baseline, evaluate_champion, config, per_customer)
    mlflow.log_metrics(
        {f"gate_{config.metric}": model_value, f"gate_baseline_{config.metric}": baseline[1], **decision.metrics()}
    )
    describe_version(
        client,
        model_name,
        str(version.version),
        f"{model_name} trained on the data up to {ds}; {config.metric} {model_value:.4f} against the "
        f"{decision.baseline} baseline's {baseline[1]:.4f}. After its gate {decision.summary}",
    )
    return decision


def describe_version(client, model_name: str, version: str, description: str) -> None:
    """What the version is and why it serves or not, where the MLflow UI shows it (its description)."""
    client.update_model_version(model_name, version, description=description[:5000])


def trained(run: mlflow.ActiveRun, decision: GateDecision, **metrics: float) -> dict[str, object]:
    """The summary of a night that trained: the version, whether it serves, why, and the numbers; a
    gate that keeps the baseline serving is an alert (the orchestrator sends it)."""
    alerts = []
    if decision.serves == BASELINE:
        alerts.append(
            f"{decision.model_name}: the gate keeps the {decision.baseline} baseline serving: {decision.reason}"
        )
    return {
        "alerts": alerts,
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


REUSED_ON = "reused_on."  # a version's tag per night it went on serving without a retrain: the reason


def reused(model_name: str, ds: str, version: str, reason: str) -> dict[str, object]:
    """The summary of a night that had nothing new to learn: version `version` goes on serving as
    the registry decided. Recorded on the version (tag reused_on.<ds>: the reason), not as an empty
    run; the reports read it there (`reused_for`)."""
    log.info("%s ds=%s: no new version, v%s stays: %s", model_name, ds, version, reason)
    MlflowClient().set_model_version_tag(model_name, str(version), f"{REUSED_ON}{ds}", reason[:5000])
    return {"status": "reused", "version": str(version), "reason": reason}


def reused_for(model_name: str, ds: str) -> tuple[str, str] | None:
    """(version, reason) when the model trained nothing new for ds and a version went on serving."""
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    client = MlflowClient()
    for version in client.search_model_versions(f"name = '{model_name}'"):
        reason = version.tags.get(f"{REUSED_ON}{ds}")
        if reason is not None:
            return str(version.version), reason
    return None


def night_line(model_name: str, ds: str) -> str | None:
    """What the model's night did, for the reports: the gate's decision on the version it trained, or
    the version that went on serving when there was nothing new to learn; None when neither."""
    run = latest_run(model_name, ds)
    line = gate_line(model_name, run.data.tags) if run is not None else None
    if line is None and (found := reused_for(model_name, ds)) is not None:
        line = f"{model_name}: no new version tonight, v{found[0]} stays ({found[1]})"
    return line


def reused_without_run(model_name: str, ds: str, version: str, reason: str) -> dict[str, object]:
    """The summary of a rerun that found its version already registered: no MLflow run, no alias moved."""
    log.info("%s ds=%s: v%s reused, nothing registered: %s", model_name, ds, version, reason)
    return {"status": "reused", "version": version, "reason": reason}


def readable_serving(
    model_name: str, ds: dt.date, load: Callable[[str], object], artifact_always: bool = False
) -> tuple[Serving, list[str]]:
    """What serves ds (ml.mlops.registry.serving_for), with the chosen version's artifact loaded once
    here: a version whose artifact cannot be loaded is demoted (tag artifact_error, no champion alias)
    and the choice made again, down to the baseline. Returns the serving and one alert per demotion.
    `artifact_always`: the version's artifact is needed even when its baseline serves (it carries it)."""
    use_experiment(model_name)  # a copied data directory's store points at its own artifacts first
    client = MlflowClient()
    alerts: list[str] = []
    while True:
        serving = serving_for(client, model_name, ds)
        if serving.version is None or not (serving.serves_model or artifact_always):
            return serving, alerts
        demoted = demoted_unless_loads(client, model_name, serving.version, load, ds.isoformat())
        if demoted is None:
            return serving, alerts
        alerts.append(demoted)


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


def unreadable_lines(model_name: str) -> list[str]:
    """One line per version of the model demoted because its artifact cannot be loaded, with the fix."""
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    try:
        versions = MlflowClient().search_model_versions(f"name = '{model_name}'")
    except mlflow.exceptions.MlflowException:
        return []
    return [
        f"{model_name} v{v.version} DEMOTED, its artifact cannot be loaded ({v.tags[ARTIFACT_ERROR]}); "
        + unreadable_fix(model_name, "<ds>")
        for v in sorted(versions, key=lambda v: int(v.version))
        if ARTIFACT_ERROR in v.tags
    ]


def evidence_line(metrics: dict[str, float]) -> str | None:
    """The gate's paired test against the champion, as logged (None when there was no champion)."""
    if "gate_vs_champion_delta" not in metrics:
        return None
    return (
        f"challenger - champion per customer {metrics['gate_vs_champion_delta']:+.4f} "
        f"[{metrics['gate_vs_champion_ci_low']:+.4f}, {metrics['gate_vs_champion_ci_high']:+.4f}] (95%), "
        f"p={metrics['gate_vs_champion_p_value']:.3g}, n={metrics['gate_vs_champion_customers']:,.0f}"
    )


def gate_line(model_name: str, tags: dict[str, str]) -> str | None:
    """The gate's decision on the version a run registered: champion or not, what serves and why
    (the nightly summary and the KPI report print it); None when the run registered nothing."""
    if "gate_version" not in tags:
        return None
    verdict = "champion" if tags.get("gate_promoted") == "True" else "challenger"
    serves = (
        f"v{tags['gate_serving_version']} serves"
        if tags.get("gate_serves") == "model"
        else f"the {tags.get('gate_baseline', 'baseline')} baseline serves: no version beats it"
    )
    return f"registered {model_name} v{tags['gate_version']}: {verdict}; {serves} ({tags.get('gate_reason', '')})"
