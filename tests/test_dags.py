"""The nightly DAG: it imports cleanly, reruns and backfills safely, and fails loudly.

DAG runs go through the real CLI (`python -m ml.orchestration`, Airflow's dag.test on SQLite) in
subprocesses, each with its own PZ_DATA_DIR and Airflow home.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import duckdb
import pandas as pd
import pytest
import yaml

from ml.config import REPO_ROOT
from tests.conftest import END_DATE, export_digests, fresh_data_dir, orchestrate

pytestmark = pytest.mark.xdist_group("airflow")

DAG_ID = "nightly_personalization"
EXPECTED_TASKS = [
    "load_landing",
    "build_staging",
    "build_metrics",
    "train_recommender",
    "score_recommendations.plan",
    "score_recommendations.score_shard",
    "score_recommendations.merge",
    "build_feature_store",
    "train_propensity",
    "score_propensity.plan",
    "score_propensity.score_shard",
    "score_propensity.merge",
    "read_experiments",
    "decide_audiences",
    "monitor_drift",
    "publish_channels",
    "build_kpi_report",
]
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


def test_the_dag_file_imports_with_its_tasks_docs_and_pool(tmp_path):
    probe = f"""
import hashlib
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(REPO_ROOT / "dags")!r})
dag = bag.dags[{DAG_ID!r}]  # parsed from the file, no metadata database needed
print(json.dumps({{
    "import_errors": {{str(k): str(v) for k, v in bag.import_errors.items()}},
    "dag_ids": sorted(bag.dag_ids),
    "tasks": [t.task_id for t in dag.topological_sort()],
    "pools": sorted({{t.pool for t in dag.tasks}}),
    "mapped": sorted(t.task_id for t in dag.tasks if "Mapped" in type(t).__name__),
    "unpooled": sorted(t.task_id for t in dag.tasks if t.pool != "warehouse"),
    "doc_md": dag.doc_md or "",
    "max_active_runs": dag.max_active_runs,
    "timetable": type(dag.timetable).__name__,
    "has_failure_callback": all(t.on_failure_callback for t in dag.tasks),
    "upstream": {{t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}},
}}))
"""
    from ml.orchestration import airflow_env

    env = {**airflow_env(), "AIRFLOW_HOME": str(tmp_path / "airflow"), "PZ_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["import_errors"] == {}
    assert found["dag_ids"] == [DAG_ID]
    assert sorted(found["tasks"]) == sorted(EXPECTED_TASKS)  # topological sort succeeded: no cycle
    assert found["upstream"] == {
        "load_landing": [],
        "build_staging": ["load_landing"],
        "build_metrics": ["build_staging"],
        "train_recommender": ["build_metrics"],
        "score_recommendations.plan": ["train_recommender"],
        "score_recommendations.score_shard": ["score_recommendations.plan"],
        "score_recommendations.merge": ["score_recommendations.score_shard"],
        "build_feature_store": ["build_metrics"],
        "train_propensity": ["build_feature_store"],
        "score_propensity.plan": ["train_propensity"],
        "score_propensity.score_shard": ["score_propensity.plan"],
        "score_propensity.merge": ["score_propensity.score_shard"],
        "read_experiments": ["build_metrics"],
        "decide_audiences": ["read_experiments", "score_propensity.merge", "score_recommendations.merge"],
        "monitor_drift": ["score_propensity.merge", "score_recommendations.merge"],
        "publish_channels": ["decide_audiences", "monitor_drift"],
        "build_kpi_report": ["publish_channels"],
    }
    # Everything that opens the warehouse is in its 1-slot pool; the mapped scoring shards are not.
    assert found["pools"] == ["default_pool", "warehouse"]
    assert found["mapped"] == ["score_propensity.score_shard", "score_recommendations.score_shard"]
    assert found["unpooled"] == found["mapped"]
    assert "Nightly personalization" in found["doc_md"]
    assert found["max_active_runs"] == 1
    assert found["timetable"] == "CronDataIntervalTimetable"
    assert found["has_failure_callback"]


def test_a_date_before_start_date_is_an_error_not_a_silent_success(tmp_path):
    result = orchestrate(tmp_path, "run", "--ds", "2026-01-01")
    assert result.returncode == 2
    assert "before the DAG's start_date 2026-05-04" in result.stderr


@pytest.mark.slow
def test_rerunning_a_ds_gives_identical_tables(small_landing, tmp_path):
    data_dir = fresh_data_dir(small_landing, tmp_path, "rerun")
    ds = END_DATE.isoformat()
    first = orchestrate(data_dir, "run", "--ds", ds)
    assert first.returncode == 0, first.stderr[-3000:]
    schemas = ("raw", "staging", "intermediate", *PARTITIONED_SCHEMAS, *ACTIVATION_SCHEMAS)
    before, files = table_contents(data_dir, schemas), export_digests(data_dir)
    second = orchestrate(data_dir, "run", "--ds", ds)
    assert second.returncode == 0, second.stderr[-3000:]
    assert_same_tables(before, table_contents(data_dir, schemas))
    assert export_digests(data_dir) == files  # byte-identical audience files and manifests
    assert len(before["marts.customer_360"]) > 0 and len(before["channels.email"]) > 0
    assert {path.split("/")[0] for path in files} == {"email", "push", "web", "call_center"}


@pytest.mark.slow
def test_a_backfill_in_reverse_order_gives_the_same_tables_as_in_order(small_landing, tmp_path):
    start, end = (END_DATE - pd.Timedelta(days=2)).isoformat(), END_DATE.isoformat()
    in_order, reverse = (fresh_data_dir(small_landing, tmp_path, name) for name in ("in_order", "reverse"))
    for data_dir, extra in ((in_order, []), (reverse, ["--reverse"])):
        result = orchestrate(data_dir, "backfill", "--start", start, "--end", end, *extra)
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
        scores = tables.pop(SCORES)
        customers = tables["marts.customer_360"].groupby("ds").size()
        assert scores.groupby("ds").size().to_dict() == customers.to_dict()
        assert scores["score"].between(0, 1).all() and set(scores["decile"]) == set(range(1, 11))
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


@pytest.mark.slow
def test_a_failing_dbt_test_stops_the_run_before_the_marts_and_says_why(small_landing, tmp_path):
    data_dir = fresh_data_dir(small_landing, tmp_path, "failing")
    config = tmp_path / "personalization.yml"
    settings = yaml.safe_load((REPO_ROOT / "config" / "personalization.yml").read_text())
    settings["schedule"]["retries"] = 0
    config.write_text(yaml.safe_dump(settings))
    good = orchestrate(data_dir, "run", "--ds", END_DATE.isoformat(), env_extra={"PZ_CONFIG": str(config)})
    assert good.returncode == 0, good.stderr[-3000:]
    marts_before = table_contents(data_dir, ("marts",))

    # A copy of the dbt project with one data test that fails on staging.
    project = tmp_path / "dbt_project"
    shutil.copytree(REPO_ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "tests" / "assert_no_orders_at_all.sql").write_text("select * from {{ ref('stg_orders') }}\n")
    env = {"PZ_CONFIG": str(config), "PZ_DBT_PROJECT_DIR": str(project)}
    failed = orchestrate(data_dir, "run", "--ds", END_DATE.isoformat(), env_extra=env)

    assert failed.returncode == 2
    output = failed.stdout + failed.stderr
    failure_lines = [line for line in output.splitlines() if "TASK FAILED" in line]
    assert len(failure_lines) == 1, failure_lines
    assert "task=build_staging" in failure_lines[0] and f"ds={END_DATE}" in failure_lines[0]
    assert "assert_no_orders_at_all" in failure_lines[0]
    not_successful = failed.stderr.split("tasks not successful: ")[1]
    assert "'build_staging'" in not_successful and "'build_metrics'" in not_successful  # nothing ran after
    assert_same_tables(marts_before, table_contents(data_dir, ("marts",)))
