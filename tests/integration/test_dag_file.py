"""The nightly DAG file: it parses with every stage of the registry as a task, with its pools and docs;
a date before start_date is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ml.paths import REPO_ROOT
from tests.helpers import orchestrate

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
    "train_uplift",
    "decide_audiences",
    "monitor_drift",
    "publish_channels",
    "check_outputs",
    "publish_serving_snapshot",
    "build_kpi_report",
]


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
    from ml.orchestration.dag_runs import airflow_env

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
        "train_uplift": ["build_feature_store", "read_experiments"],
        "decide_audiences": ["score_propensity.merge", "score_recommendations.merge", "train_uplift"],
        "monitor_drift": ["score_propensity.merge", "score_recommendations.merge"],
        "publish_channels": ["decide_audiences", "monitor_drift"],
        "check_outputs": ["publish_channels"],
        "publish_serving_snapshot": ["check_outputs"],
        "build_kpi_report": ["check_outputs"],
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
