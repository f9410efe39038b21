"""The platform's MLflow experiments open on their training runs (not on MLflow 3's GenAI pages)."""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient

from ml.mlops.tracking import EXPERIMENT_KIND, TRAINING_RUNS, use_experiment
from tests.unit.recommender.test_training import registry  # noqa: F401  (the fixture)


def test_every_experiment_is_marked_as_training_runs_new_or_old(registry):  # noqa: F811
    created = use_experiment("recommender")
    assert MlflowClient().get_experiment(created).tags[EXPERIMENT_KIND] == TRAINING_RUNS
    older = mlflow.create_experiment("propensity")  # made by an earlier release, without the tag
    assert EXPERIMENT_KIND not in MlflowClient().get_experiment(older).tags
    assert use_experiment("propensity") == older
    assert MlflowClient().get_experiment(older).tags[EXPERIMENT_KIND] == TRAINING_RUNS


def test_each_nights_drift_is_one_run_and_a_rerun_writes_into_it(registry):  # noqa: F811
    import datetime as dt

    import pandas as pd

    from ml.mlops.monitoring import DRIFT_EXPERIMENT, log_drift_history

    def summary(share: float, version: str) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "model_name": "propensity",
                    "check_name": "features",
                    "model_version": version,
                    "share_drifted_columns": share,
                    "dataset_drift": share >= 0.5,
                },
            ]
        )

    night = dt.date(2026, 10, 30)
    log_drift_history(night, summary(0.1, "1"))
    log_drift_history(night + dt.timedelta(days=1), summary(0.6, "2"))
    log_drift_history(night + dt.timedelta(days=1), summary(0.6, "3"))  # a rerun that named another version
    client = MlflowClient()
    experiment = client.get_experiment_by_name(DRIFT_EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], order_by=["tags.ds ASC"])
    assert [run.data.tags["ds"] for run in runs] == ["2026-10-30", "2026-10-31"]
    assert runs[1].data.metrics["propensity.features.dataset_drift"] == 1.0
    assert runs[1].data.tags["propensity.features.model_version"] == "3"
    history = client.get_metric_history(runs[0].info.run_id, "propensity.features.share_drifted_columns")
    assert [(point.step, point.value) for point in history] == [(night.toordinal(), 0.1)]
    assert experiment.tags[EXPERIMENT_KIND] == TRAINING_RUNS
