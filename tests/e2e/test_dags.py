"""The nightly DAG: it imports cleanly, reruns and backfills safely, and fails loudly.

DAG runs go through the real CLI (`python -m ml`, Airflow's dag.test on SQLite) in
subprocesses, each with its own PZ_DATA_DIR and Airflow home.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from ml.paths import REPO_ROOT
from tests.helpers import END_DATE, export_digests, fresh_data_dir, orchestrate

pytestmark = pytest.mark.xdist_group("airflow")

DAG_ID = "nightly_personalization"
# Outputs partitioned by date or keyed by ds; staging and intermediate are the last run's working state.
PARTITIONED_SCHEMAS = ("marts", "quarantine", "audit")
# The day's decisions and what was published from them.
ACTIVATION_SCHEMAS = ("activation", "experiments", "channels", "monitoring")
RECOMMENDATIONS = "marts.customer_recommendations"
SCORES = "marts.customer_scores"
EXPERIMENT_RESULTS = "marts.fct_experiment_results"
PROGRAM_READOUT = "marts.fct_program_readout"


def table_contents(data_dir, schemas) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        names = connection.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema in ? order by 1",
            [list(schemas)],
        ).fetchall()
        return {name: connection.execute(f"select * from {name} order by all").df() for (name,) in names}


def assert_same_tables(left, right) -> None:
    assert sorted(left) == sorted(right)
    for name in left:
        pd.testing.assert_frame_equal(left[name], right[name], obj=name)


BACKFILL = ((END_DATE - pd.Timedelta(days=2)).isoformat(), END_DATE.isoformat())


# Module scope: three nights in order are the baseline of the reverse backfill, the data the rerun
# repeats its last night on, and (copied) the warehouse a failing night must leave alone. Building
# them once saves two full DAG nights of the suite (nine before, seven now, plus the failing one).
@pytest.fixture(scope="module")
def in_order(small_landing, tmp_path_factory) -> Path:
    data_dir = fresh_data_dir(small_landing, tmp_path_factory.mktemp("dags"), "in_order")
    result = orchestrate(data_dir, "backfill", "--start", BACKFILL[0], "--end", BACKFILL[1])
    assert result.returncode == 0, result.stderr[-3000:]
    return data_dir


@pytest.mark.slow
def test_a_backfill_in_reverse_order_gives_the_same_tables_as_in_order(in_order, small_landing, tmp_path):
    reverse = fresh_data_dir(small_landing, tmp_path, "reverse")
    result = orchestrate(reverse, "backfill", "--start", BACKFILL[0], "--end", BACKFILL[1], "--reverse")
    assert result.returncode == 0, result.stderr[-3000:]
    in_order_tables = table_contents(in_order, PARTITIONED_SCHEMAS)
    reverse_tables = table_contents(reverse, PARTITIONED_SCHEMAS)
    # Readouts need the earlier days' assignments: a reverse backfill reads them before they exist
    # (the program readout's costs too).
    results = in_order_tables.pop(EXPERIMENT_RESULTS)
    reverse_tables.pop(EXPERIMENT_RESULTS)
    for tables in (in_order_tables, reverse_tables):
        program = tables.pop(PROGRAM_READOUT)
        assert program["ds"].nunique() == 3 and (program["holdout_customers"] > 0).all()
    # Which model version scores a date depends on the registry's history (the champion, or for a
    # backfill behind it the newest version trained by then), so recommendations are compared by
    # their guarantees; every table dbt builds must be identical.
    for tables in (in_order_tables, reverse_tables):
        recommendations = tables.pop(RECOMMENDATIONS)
        per_customer = recommendations.groupby(["ds", "customer_id"]).size()
        assert recommendations["ds"].nunique() == 3 and (per_customer == 10).all()
        neighbors = tables.pop("marts.item_neighbors")  # the serving version's item-item structure
        assert neighbors["ds"].nunique() == 3 and (neighbors["item_id"] != neighbors["neighbor_item_id"]).all()
        assert neighbors.groupby(["ds", "item_id"])["rank"].max().le(20).all()
        scores = tables.pop(SCORES)
        customers = tables["marts.customer_360"].groupby("ds").size()
        assert scores.groupby("ds").size().to_dict() == customers.to_dict()
        assert scores["score"].between(0, 1).all() and set(scores["decile"]) == set(range(1, 11))
        # The uplift models learn from the audiences' earlier assignments too (which a reverse backfill
        # has not made yet) and their version numbers follow the registry's history: compared by
        # their guarantees, every customer scored for every learned arm each night.
        uplift = tables.pop("marts.customer_uplift")
        arms = uplift.groupby("ds")[["campaign_id", "arm"]].apply(lambda g: len(g.drop_duplicates()))
        assert (uplift.groupby("ds").size() == customers.reindex(arms.index) * arms).all()
        for evidence in ("marts.uplift_arms", "marts.uplift_policy_value"):
            assert tables.pop(evidence)["ds"].nunique() == 3
    assert_same_tables(in_order_tables, reverse_tables)
    assert in_order_tables["marts.customer_360"]["ds"].nunique() == 3
    # Frequency caps read the earlier days' contacts, so the decisions depend on the order dates
    # are built in; their guarantees do not: one decision per customer and day, every day.
    # In order, the first day's cart abandoners have finished their 2-day window by the last day.
    cart = results[(results["ds"] == pd.Timestamp(END_DATE)) & (results["audience"] == "cart_abandonment")]
    assert (cart["baseline_customers"] > 0).all() and (cart["arm_customers"] > 0).all() and len(cart) == 3
    for data_dir in (in_order, reverse):
        decisions = table_contents(data_dir, ("activation",))["activation.decisions"]
        assert decisions.groupby("ds").size().to_dict() == customers.to_dict()
        assert not decisions.duplicated(["ds", "customer_id"]).any()


def registry_state(data_dir) -> dict[str, tuple]:
    """Per registered model: its versions and its aliases."""
    client = MlflowClient(f"sqlite:///{data_dir / 'mlflow.db'}")
    return {
        model.name: (
            sorted(int(v.version) for v in client.search_model_versions(f"name = '{model.name}'")),
            sorted((alias, str(version)) for alias, version in model.aliases.items()),
        )
        for model in client.search_registered_models()
    }


@pytest.mark.slow
def test_rerunning_a_ds_gives_identical_tables_and_files(in_order):
    """The last night of the backfill again: every table and every exported byte the same."""
    schemas = ("raw", "staging", "intermediate", *PARTITIONED_SCHEMAS, *ACTIVATION_SCHEMAS)
    before, files = table_contents(in_order, schemas), export_digests(in_order)
    registry = registry_state(in_order)
    again = orchestrate(in_order, "run", "--ds", END_DATE.isoformat())
    assert again.returncode == 0, again.stderr[-3000:]
    # Trained on the same rows with the same configuration and code: nothing registered, no alias moved.
    assert registry_state(in_order) == registry
    assert_same_tables(before, table_contents(in_order, schemas))
    assert export_digests(in_order) == files  # byte-identical audience files and manifests
    assert len(before["marts.customer_360"]) > 0 and len(before["channels.email"]) > 0
    assert {path.split("/")[0] for path in files} == {"email", "push", "web", "call_center"}


def test_the_nights_between_searches_continue_the_last_versions_fits(in_order):
    """Night one searches; the next nights say whether they continued its fits or refit, and why,
    and a continued scoring fit records the fit it started from."""
    client = MlflowClient(f"sqlite:///{in_order / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("recommender")
    runs = {}
    for ds in pd.date_range(*BACKFILL).date:
        # The newest run of each night (the rerun test may have run the last one again: it decides the same).
        runs[ds] = client.search_runs(
            [experiment.experiment_id], f"tags.ds = '{ds}'", order_by=["start_time DESC"], max_results=1
        )[0]
    first, *later = runs.values()
    assert first.data.tags["search_plan"].startswith("search: ")
    for run in runs.values():
        tags = run.data.tags
        if tags["search_plan"].startswith("search: "):
            assert tags["warm_start"] == "full refit: the search chose the settings tonight"
            continue
        assert tags["search_plan"].startswith("refit v"), tags["search_plan"]
        (scoring,) = client.search_runs(
            [experiment.experiment_id],
            f"tags.mlflow.parentRunId = '{run.info.run_id}' and params.role = 'scoring'",
        )
        if tags["warm_start"].startswith("continued v"):
            assert scoring.data.params["warm_started_from"] < scoring.data.params["trained_through"]
            metrics = run.data.metrics
            assert metrics["warm_start_ndcg_at_10"] >= 0.98 * metrics["warm_start_previous_ndcg_at_10"]
        else:
            assert tags["warm_start"].startswith("full refit: ") and scoring.data.params["warm_started_from"] == ""
    # The demo data's shape (a recent-days holdout, LightFM chosen) is the one warm starts are for.
    assert any(run.data.tags["warm_start"].startswith("continued v") for run in later), [
        run.data.tags["warm_start"] for run in later
    ]


@pytest.mark.slow
def test_a_failing_dbt_test_stops_the_run_before_the_marts_and_says_why(in_order, tmp_path):
    data_dir = tmp_path / "failing"
    shutil.copytree(in_order, data_dir)  # a warehouse with good nights, which the failing one must not touch
    config = tmp_path / "personalization.yml"
    settings = yaml.safe_load((REPO_ROOT / "config" / "personalization.yml").read_text())
    settings["schedule"]["retries"] = 0
    config.write_text(yaml.safe_dump(settings))
    marts_before = table_contents(data_dir, ("marts",))

    # A copy of the dbt project with one data test that fails on staging.
    project = tmp_path / "dbt_project"
    shutil.copytree(REPO_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "tests" / "assert_no_orders_at_all.sql").write_text("select * from {{ ref('stg_orders') }}\n")
    env = {"PZ_CONFIG": str(config), "PZ_DBT_PROJECT_DIR": str(project)}
    failed = orchestrate(data_dir, "run", "--ds", END_DATE.isoformat(), env_extra=env)

    assert failed.returncode == 2
    # The console has the stage's line with its cause; the run's log file (named on the console) has
    # the task's full log, with the one line an on-call engineer greps for.
    console = failed.stdout + failed.stderr
    assert any("build_staging" in line and "FAILED: " in line for line in console.splitlines()), console[-3000:]
    assert "TASK FAILED" not in console
    log_file = Path(re.search(r"log (\S+\.log)$", failed.stdout.strip().splitlines()[-1]).group(1))
    assert failed.stdout.strip().splitlines()[-1].startswith("failed: ")
    failure_lines = [line for line in log_file.read_text().splitlines() if "TASK FAILED" in line]
    assert len(failure_lines) == 1, failure_lines
    assert "task=build_staging" in failure_lines[0] and f"ds={END_DATE}" in failure_lines[0]
    assert "assert_no_orders_at_all" in failure_lines[0]
    # The run ends on one line: the first failing task and its cause, not the tasks that never ran.
    final = failed.stderr.strip().splitlines()[-1]
    assert final.startswith(f"error: {DAG_ID} ds={END_DATE} FAILED at build_staging: ")
    assert "assert_no_orders_at_all" in final and "tasks did not succeed" in final
    assert_same_tables(marts_before, table_contents(data_dir, ("marts",)))
