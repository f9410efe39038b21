"""Any horizon that makes sense trains: the cutoff plan reaches back as far as the evaluation fit
needs, and short history is named in one line with what to change."""

from __future__ import annotations

import datetime as dt

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from ml.paths import REPO_ROOT
from ml.propensity.dataset import plan_cutoffs
from ml.propensity.settings import PropensityConfig
from ml.synthetic.generate import generate
from ml.synthetic.settings import GeneratorSettings
from tests.helpers import END_DATE, query, run_pipeline

DS = END_DATE
LONG = GeneratorSettings(customers=500, days=300, end_date=END_DATE, bad_row_rate=0.0, seed=13)


@pytest.mark.parametrize("horizon", [7, 30, 90, 180])
def test_every_horizon_gets_a_validation_cutoff_and_both_fits_get_cutoffs(horizon):
    config = PropensityConfig(horizon_days=horizon, training_window_days=max(180, horizon + 7))
    plan = plan_cutoffs(DS, config, first_day=None)
    assert plan.problem(config) is None
    assert plan.validation + dt.timedelta(days=horizon) <= DS  # its label is known by ds
    assert plan.scoring[-1] == plan.validation and plan.scoring[0] >= DS - dt.timedelta(
        days=180 if horizon < 180 else 187
    )
    # Nothing the evaluation fit learns overlaps the validation labels.
    assert max(plan.evaluation) + dt.timedelta(days=horizon) <= plan.validation
    assert len(plan.evaluation) == len(plan.scoring)  # as much history as the scoring fit
    # Every cutoff is a Sunday (the fixed grid, whatever the weekday of ds), and dbt builds a snapshot
    # for each: the oldest lies within feature_snapshot_days of ds.
    assert {day.isoweekday() for day in plan.all} == {7}
    assert min(plan.evaluation) == plan.needed_from >= DS - dt.timedelta(days=config.feature_snapshot_days)


@pytest.mark.parametrize("weekday_offset", range(7))
def test_the_cutoffs_stay_on_the_same_sundays_as_ds_moves(weekday_offset):
    config = PropensityConfig()
    ds = DS + dt.timedelta(days=weekday_offset)
    plan = plan_cutoffs(ds, config, first_day=None)
    assert {day.isoweekday() for day in plan.all} == {7}
    assert ds - dt.timedelta(days=config.horizon_days + 6) <= plan.validation <= ds - dt.timedelta(days=30)
    assert len(plan.scoring) == len(plan.evaluation) >= 20  # (180 - 36) // 7 + 1 at the least


def test_short_history_is_named_with_the_date_it_needs_and_the_keys_to_change():
    config = PropensityConfig(horizon_days=90)
    plan = plan_cutoffs(DS, config, first_day=DS - dt.timedelta(days=150))
    problem = plan.problem(config)
    assert problem is not None and "\n" not in problem
    assert str(plan.needed_from) in problem and "propensity.horizon_days" in problem
    assert "propensity.training_window_days" in problem


def test_a_90_day_horizon_trains_and_scores_with_the_default_window(tmp_path, monkeypatch):
    raw = yaml.safe_load((REPO_ROOT / "config" / "personalization.yml").read_text())
    raw["propensity"]["horizon_days"] = 90
    config_path = tmp_path / "personalization.yml"
    config_path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("PZ_CONFIG", str(config_path))
    data_dir = tmp_path / "data"
    generate(LONG, data_dir / "landing")
    result = run_pipeline(data_dir, DS.isoformat(), True, "--through", "score_propensity")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "propensity ds=" not in result.stderr or "skipped" not in result.stderr, result.stderr[-3000:]
    scores = query(data_dir, "select * from marts.customer_scores where ds = ?", [DS])
    customers = query(data_dir, "select customer_id from marts.customer_360 where ds = ?", [DS])
    assert len(scores) == len(customers) > 0 and scores["score"].between(0, 1).all()
    client = MlflowClient(tracking_uri=f"sqlite:///{data_dir / 'mlflow.db'}")
    (run,) = client.search_runs(
        [client.get_experiment_by_name("propensity").experiment_id], "params.horizon_days = '90'"
    )
    newest_labelled = DS - dt.timedelta(days=90)  # its 90-day label window ends with ds
    sunday_at_or_before = newest_labelled - dt.timedelta(days=newest_labelled.isoweekday() % 7)
    assert run.data.params["validation_cutoff"] == str(sunday_at_or_before)
    assert int(run.data.params["evaluation_cutoffs"]) > 0 and "gate_reason" in run.data.tags
    mlflow.set_tracking_uri(None)
