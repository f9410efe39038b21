"""The nightly personalization DAG: one task (or task group) per stage of ml.orchestration.stages.

The stages, their order and their pools are declared there, once; this file only turns them into
Airflow tasks. Every task receives `ds` (the day that just ended) and replaces only what it writes for
`ds`, so rerunning or backfilling any date is safe. Run one date: `make run DS=YYYY-MM-DD`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Param, dag, get_current_context, task, task_group
from airflow.timetables.interval import CronDataIntervalTimetable

from ml.orchestration.callbacks import log_task_failure, notify_night_failed, run_in_task
from ml.orchestration.config import load_config
from ml.orchestration.stages import (
    RUN_OPTIONS,
    STAGES,
    Stage,
    dag_documentation,
    merge_shards,
    plan_shards,
    score_one_shard,
)

# Read when Airflow parses this file: a small local file, no database or network at parse time.
SCHEDULE = load_config().schedule

DOC_MD = f"""
### Nightly personalization

Builds everything for one logical date `ds`, the day that just ended:

{dag_documentation()}

The recommender and the propensity branches both start after build_metrics; a failure in one does
not stop the other. Tasks that open the warehouse share the 1-slot `warehouse` pool (DuckDB allows
one writer); the scoring shards never open it.
"""


def timeout(stage: Stage) -> dt.timedelta:
    return dt.timedelta(minutes=stage.timeout_minutes)


def stage_task(stage: Stage):
    """One task that runs the stage for the run's ds (with the run options the stage takes)."""

    @task(task_id=stage.name, pool=stage.pool, doc_md=stage.summary, execution_timeout=timeout(stage))
    def run_stage(ds: str | None = None, params: dict | None = None):
        options = {name: (params or {}).get(name, False) for name in stage.options}
        return run_in_task(stage.name, stage.run, ds, **options)

    return run_stage()


def sharded_stage_task(stage: Stage):
    """A task group: `plan` and `merge` hold the stage's pool; `score_shard` is mapped over the plan's
    shards and opens only the plan's files, so the shards run side by side on every free worker slot."""

    @task_group(group_id=stage.name, tooltip=stage.summary)
    def sharded() -> None:
        @task(task_id="plan", pool=stage.pool, execution_timeout=timeout(stage))
        def plan(ds: str | None = None) -> list[dict[str, object]]:
            return run_in_task(f"{stage.name}.plan", plan_shards, ds, stage)

        @task(task_id="score_shard", map_index_template="{{ shard_label }}", execution_timeout=timeout(stage))
        def score_shard(shard: int, shards: int, ds: str | None = None) -> dict[str, object]:
            get_current_context()["shard_label"] = f"shard {shard + 1} of {shards}"  # type: ignore[typeddict-unknown-key]
            return run_in_task(f"{stage.name}.shard {shard + 1}/{shards}", score_one_shard, ds, stage, shard, shards)

        @task(task_id="merge", pool=stage.pool, execution_timeout=timeout(stage))
        def merge(shard_results, ds: str | None = None) -> dict[str, object]:
            return run_in_task(f"{stage.name}.merge", merge_shards, ds, stage, len(shard_results))

        merge(score_shard.expand_kwargs(plan()))

    return sharded()


@dag(
    dag_id="nightly_personalization",
    doc_md=DOC_MD,
    # Data-interval semantics: the 02:00 run builds the day that just ended (ds = interval start).
    schedule=CronDataIntervalTimetable(SCHEDULE.cron, timezone="UTC"),
    start_date=dt.datetime.combine(SCHEDULE.start_date, dt.time(), tzinfo=dt.UTC),
    catchup=SCHEDULE.catchup,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=SCHEDULE.run_timeout_hours),
    on_failure_callback=notify_night_failed,
    params={name: Param(False, type="boolean", description=text) for name, text in RUN_OPTIONS.items()},
    tags=["personalization"],
    default_args={
        "retries": SCHEDULE.retries,
        "retry_delay": dt.timedelta(minutes=SCHEDULE.retry_delay_minutes),
        "on_failure_callback": log_task_failure,
    },
)
def nightly_personalization():
    tasks = {}
    for stage in STAGES:
        tasks[stage.name] = sharded_stage_task(stage) if stage.shards else stage_task(stage)
        for upstream in stage.upstream:
            tasks[upstream] >> tasks[stage.name]


nightly_personalization()
