"""The pipeline's stages as plain functions of `ds`: the DAG's tasks and the CLI both call these.

Each stage reads data up to the end of `ds` only and replaces what it writes for `ds`, so any date
can be rerun or backfilled.
"""

from __future__ import annotations

import logging

from ml.config import landing_dir, warehouse_path
from ml.transform import run_dbt

log = logging.getLogger(__name__)


def load_landing_files(ds: str) -> dict[str, int]:
    """Copy the landing files into raw.*; returns records read per table (small: fits XCom)."""
    from ml.landing import load_landing

    loads = load_landing(landing_dir(), warehouse_path())
    log.info("ds=%s landing loaded: %s", ds, {name: load.rows for name, load in loads.items()})
    return {name: load.rows for name, load in loads.items()}


# A test runs in the first layer where all its parents exist: with dbt's default ("eager"), a
# relationship test from a mart to staging would run in the staging build, before the mart exists.
LAYER_TESTS = ("--indirect-selection", "buildable")


def build_staging(ds: str) -> dict[str, int]:
    """dbt build of staging, quarantine, reconciliation and the erasure ledger, with their tests (a
    failure stops the run); then the erasure requests a person must look at, as warnings."""
    from ml.erasure import erasure_problems, log_erasure_problems

    run_dbt("build", ds, "--selector", "staging", *LAYER_TESTS)
    problems = erasure_problems()
    log_erasure_problems(problems)
    return {"erasure_requests_to_check": len(problems)}


def build_metrics(ds: str) -> None:
    """dbt build of the metric marts, with their tests and unit tests."""
    run_dbt("build", ds, "--selector", "metrics", *LAYER_TESTS)


def train_recommender(ds: str) -> dict[str, object]:
    """Train, evaluate and register the recommender; the champion/challenger gate decides the alias."""
    from ml.recommender.training import train_recommender as train

    return train(ds)


def score_recommendations(ds: str) -> dict[str, object]:
    """Top K recommendations for every customer known at ds into marts.customer_recommendations:
    plan, every shard, merge, in this process (the DAG maps the shards over workers instead)."""
    from ml.recommender.scoring import score_recommendations as score

    return score(ds)


def plan_recommendations(ds: str) -> list[dict[str, object]]:
    """Read the warehouse once, fix the model version, split the customers into shards (ml.shards)."""
    from ml.recommender.scoring import plan_recommendations as plan

    return plan(ds)


def score_recommendation_shard(ds: str, shard: int, shards: int) -> dict[str, object]:
    """One shard's top K items, from the plan's files only: runs beside the other shards."""
    from ml.recommender.scoring import score_recommendation_shard as score

    return score(ds, shard, shards)


def merge_recommendations(ds: str, shards: int) -> dict[str, object]:
    """Check every shard reported, then replace the ds partition of marts.customer_recommendations."""
    from ml.recommender.scoring import merge_recommendations as merge

    return merge(ds, shards)


def build_feature_store(ds: str) -> dict[str, int]:
    """Export the feature snapshots, `feast apply`, materialize ds into the online store."""
    from ml.feature_store import build_feature_store as build

    return build(ds)


def train_propensity(ds: str) -> dict[str, object]:
    """Train and validate the propensity model out of time, register it, gate it."""
    from ml.propensity.training import train_propensity as train

    return train(ds)


def score_propensity(ds: str) -> dict[str, object]:
    """A calibrated purchase probability and decile for every customer into marts.customer_scores:
    plan, every shard, merge, in this process (the DAG maps the shards over workers instead)."""
    from ml.propensity.scoring import score_customers

    return score_customers(ds)


def plan_scores(ds: str) -> list[dict[str, object]]:
    """Fix the propensity model version and split the customers known at ds into shards."""
    from ml.propensity.scoring import plan_scores as plan

    return plan(ds)


def score_propensity_shard(ds: str, shard: int, shards: int) -> dict[str, object]:
    """One shard's probabilities, with features from the Feast offline store: runs beside the others."""
    from ml.propensity.scoring import score_shard

    return score_shard(ds, shard, shards)


def merge_scores(ds: str, shards: int) -> dict[str, object]:
    """Deciles over all shards' scores together, then replace the ds partition of marts.customer_scores."""
    from ml.propensity.scoring import merge_scores as merge

    return merge(ds, shards)


def decide_audiences(ds: str) -> dict[str, object]:
    """One decision per customer (an audience or the default experience), holdout and arm
    assignments into experiments.assignments, and each audience's funnel."""
    from ml.activation.store import decide_audiences as decide

    return decide(ds)


def publish_channels(ds: str) -> dict[str, object]:
    """Check the treated customers' rows (consent, erasure, holdout, one decision), then write the
    channel tables, the files with their manifests, and the marketer summary."""
    from ml.activation.export import publish_channels as publish

    return publish(ds)


def monitor_drift(ds: str) -> dict[str, object]:
    """Evidently drift of the features, predictions and recommendations of ds against the reference
    of the model version in use; reports, monitoring tables and channels.model_health."""
    from ml.monitoring import monitor_drift as monitor

    return monitor(ds)


def read_experiments(ds: str) -> dict[str, object]:
    """Always-valid readouts of every experiment version whose goal windows ended by ds
    (marts.fct_experiment_results) and of the global holdout (marts.fct_program_readout); pauses harm
    and ships winners as configured (activation.audience_status, experiments.audit_log)."""
    from ml.activation.readout import read_experiments as read

    return read(ds)


def build_kpi_report(ds: str) -> dict[str, object]:
    """The marketer KPI report of ds: one self-contained HTML file with charts under reports/kpi/."""
    from ml.kpi_report import build_kpi_report as build

    return build(ds)
