"""The stage entries: each takes `ds` as a date and the platform configuration, hands its stage the
section it needs, and returns the stage's small summary (an XCom).

Only the orchestrator loads the configuration and parses `ds` (ml.orchestration.stages.run_stage,
ml.orchestration.callbacks.run_in_task); the packages below take what they are given. The stages'
libraries are imported inside each entry: the DAG file imports this module every time Airflow parses
it, and importing every stage's modules (MLflow, Feast, Evidently, LightFM, scikit-learn) takes 2.8 s
against 0.11 s for the registry alone (measured on 2 cores with bytecode compiled; docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the entries import their stages' modules when called (see above)
    from ml.mlops.sharding import ShardedScoring
    from ml.orchestration.config import PlatformConfig


def load_landing(ds: dt.date, config: PlatformConfig, allow_stale: bool = False) -> dict[str, object]:
    from ml.warehouse.landing import load_landing_files

    return load_landing_files(ds, config.schedule.max_staleness_days, allow_stale=allow_stale)


def build_staging(ds: dt.date, config: PlatformConfig, full_refresh: bool = False) -> dict[str, object]:
    from ml.warehouse.transform import build_staging

    return build_staging(ds, config.dbt_vars(), full_refresh=full_refresh)


def build_metrics(ds: dt.date, config: PlatformConfig, full_refresh: bool = False) -> None:
    from ml.warehouse.transform import build_metrics

    build_metrics(ds, config.dbt_vars(), full_refresh=full_refresh)


def train_recommender(ds: dt.date, config: PlatformConfig) -> dict[str, object]:
    from ml.recommender.training import train_recommender

    return train_recommender(ds, config.recommender)


def recommendation_scoring(config: PlatformConfig) -> ShardedScoring:
    from ml.recommender.scoring import RecommendationScoring

    return RecommendationScoring(config.recommender, config.scoring.shards)


def build_feature_store(ds: dt.date, config: PlatformConfig) -> dict[str, object]:
    from ml.mlops.feature_store import build_feature_store

    return build_feature_store(ds)


def train_propensity(ds: dt.date, config: PlatformConfig) -> dict[str, object]:
    from ml.propensity.training import train_propensity

    return train_propensity(ds, config.propensity)


def propensity_scoring(config: PlatformConfig) -> ShardedScoring:
    from ml.propensity.scoring import PropensityScoring

    return PropensityScoring(config.scoring.shards)


def read_experiments(ds: dt.date, config: PlatformConfig) -> dict[str, object]:
    """dbt builds the readouts' inputs for ds (exposures, the holdout's customers), then they are read."""
    from ml.activation.readout import read_experiments
    from ml.activation.store import upgrade_assignments
    from ml.warehouse.transform import build_experiment_inputs

    upgrade_assignments()
    build_experiment_inputs(ds, config.dbt_vars())
    return read_experiments(ds, config.activation)


def train_uplift(ds: dt.date, config: PlatformConfig) -> dict[str, object]:
    """Train and gate the uplift models (their inputs were built by read_experiments), then score."""
    from ml.uplift.scoring import score_uplift
    from ml.uplift.training import train_uplift

    trained = train_uplift(ds, config.uplift, config.profit_terms())
    return {**trained, "scoring": score_uplift(ds)}


def decide_audiences(ds: dt.date, config: PlatformConfig) -> dict[str, object]:
    from ml.activation.store import decide_audiences

    return decide_audiences(ds, config.activation, config.uplift.exploration_percent)


def monitor_drift(ds: dt.date, config: PlatformConfig) -> dict[str, object]:
    from ml.mlops.monitoring import monitor_drift

    return monitor_drift(ds, config.monitoring)


def publish_channels(ds: dt.date, config: PlatformConfig) -> dict[str, object]:
    """The channel tables and files, then the marketer's summary of them (a report reads what
    activation wrote, so the orchestrator calls the two in turn)."""
    from ml.activation.export import publish_channels
    from ml.reports.audiences import write_report

    published = publish_channels(ds, config.activation, config.monitoring, config.sha256())
    report = write_report(ds, config.activation)
    return {"report": str(report), **published}


def check_outputs(ds: dt.date, config: PlatformConfig) -> dict[str, object]:
    from ml.warehouse.transform import check_outputs

    return check_outputs(ds, config.dbt_vars())


def publish_serving_snapshot(ds: dt.date, config: PlatformConfig) -> dict[str, object]:
    from ml.serving.snapshot import publish_serving_snapshot

    return publish_serving_snapshot(ds, config.activation, config.serving.snapshots_kept)


def build_kpi_report(ds: dt.date, config: PlatformConfig) -> dict[str, object]:
    from ml.reports.kpi import build_kpi_report

    return build_kpi_report(ds, config.activation)
