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
