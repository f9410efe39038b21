"""The stage registry (ml.orchestration.stages): one graph that the DAG, the pipeline and the docs read."""

from __future__ import annotations

import datetime as dt
import inspect

import pytest

from ml.errors import PlatformError
from ml.orchestration.config import load_config
from ml.orchestration.pipeline import LAST_WAREHOUSE_STAGE, main
from ml.orchestration.settings import WAREHOUSE_POOL
from ml.orchestration.stages import STAGES, markdown_table, run_stage, stage, stages_through
from ml.paths import REPO_ROOT


def test_names_are_unique_and_every_stage_comes_after_the_stages_it_waits_for():
    seen: list[str] = []
    for current in STAGES:
        assert current.name not in seen
        assert set(current.upstream) <= set(seen), f"{current.name} waits for a stage that runs later"
        seen.append(current.name)


def test_every_stage_is_a_function_of_ds_and_the_configuration_with_a_summary():
    """The registry holds the stage functions themselves (ml.orchestration.entries): each takes ds and
    the configuration first; a sharded stage makes its scoring from the configuration, and that scoring
    has the three steps of ml.mlops.sharding.ShardedScoring."""
    config = load_config()
    for current in STAGES:
        assert current.summary.endswith("."), current.name
        assert (current.run is None) == (current.shards is not None), current.name
        if current.shards is not None:
            scoring = current.shards(config)
            assert isinstance(scoring.stage, str)
            for step, first in (("plan", ["ds"]), ("score_shard", ["shard"]), ("merge", ["ds", "shards"])):
                assert list(inspect.signature(getattr(scoring, step)).parameters)[: len(first)] == first
            continue
        parameters = list(inspect.signature(current.run).parameters)
        assert parameters[:2] == ["ds", "config"], current.name
        assert set(current.options) <= set(parameters), current.name
        if current.rebuilds_history:
            assert "full_refresh" in parameters, current.name


def test_a_stage_entry_gets_ds_as_a_date_and_the_section_it_needs(monkeypatch):
    """run_stage parses ds and loads the configuration once; the entry hands the stage its section."""
    import ml.activation.store as store

    seen = {}
    monkeypatch.setattr(
        store,
        "decide_audiences",
        lambda ds, activation, exploration_percent: seen.update(
            ds=ds, activation=activation, exploration=exploration_percent
        ),
    )
    run_stage("decide_audiences", "2026-10-31")
    assert seen["ds"] == dt.date(2026, 10, 31) and seen["activation"] == load_config().activation
    assert seen["exploration"] == load_config().uplift.exploration_percent


def test_only_the_shards_run_outside_the_warehouse_pool():
    assert {current.pool for current in STAGES} == {WAREHOUSE_POOL}
    assert [current.name for current in STAGES if current.shards] == ["score_recommendations", "score_propensity"]


def test_the_warehouse_only_run_is_landing_staging_and_metrics():
    assert [s.name for s in stages_through(LAST_WAREHOUSE_STAGE)] == ["load_landing", "build_staging", "build_metrics"]
    assert [s.name for s in stages_through("train_propensity")] == [
        "load_landing",
        "build_staging",
        "build_metrics",
        "build_feature_store",
        "train_propensity",
    ]


def test_through_both_scores_runs_the_two_model_branches_and_nothing_after_them():
    names = [s.name for s in stages_through("score_propensity", "score_recommendations")]
    assert names == [s.name for s in STAGES][: names.index("score_propensity") + 1]
    assert names[-1] == "score_propensity" and "train_recommender" in names and "decide_audiences" not in names


def test_an_unknown_stage_to_run_through_is_a_usage_error_that_lists_the_stages(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--ds", "2026-10-31", "--through", "train"])
    assert exited.value.code == 2 and "no stage 'train'; the stages are: load_landing" in capsys.readouterr().err


def test_an_unknown_stage_is_an_error_that_lists_the_stages():
    with pytest.raises(PlatformError, match="no stage 'train'; the stages are: load_landing, build_staging"):
        stage("train")


def test_the_architecture_doc_shows_the_registry_as_it_is():
    """docs/architecture.md holds `python -m ml stages`'s table: regenerate it when a stage changes."""
    assert markdown_table() in (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
