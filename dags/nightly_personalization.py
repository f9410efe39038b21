"""
### Nightly personalization

Builds the warehouse for one logical date `ds`, the day that just ended:

1. **load_landing** copies every landing file into `raw.*` (text, with file and row lineage);
   a broken file fails here with its name and line.
2. **build_staging** `dbt build` of staging, quarantine, reconciliation and the erasure ledger with
   their tests (erasure requests a person must check are logged as warnings):
   bad rows go to quarantine with a reason; counts that do not reconcile fail the run.
3. **build_metrics** `dbt build` of the metric marts (CSAT, CES, NPS, retention, customer 360)
   with their tests and unit tests. Daily facts replace `ds` and a short lookback.
4. **train_recommender** fits the hybrid LightFM model, evaluates it on the last 14 days beside
   the popularity baseline, logs it to MLflow (experiment and registered model `recommender`) and
   makes it `champion` only if it beats the current champion on the same holdout by the margin.
5. **score_recommendations** writes the top K items for every customer to
   `marts.customer_recommendations` with the champion, popular items for customers with too little
   history (`strategy` says which). A task group: `plan` reads the warehouse once and splits the
   customers into `scoring.shards` shards, `score_shard` is mapped over them (dynamic task mapping,
   no pool: more workers, a faster night), `merge` writes the partition (ml/shards.py).
6. **build_feature_store** exports the daily customer feature snapshots (`marts.customer_features_daily`)
   to the Feast repository's source, runs `feast apply` and materializes ds into the online store.
7. **train_propensity** builds a training set over weekly cutoffs by Feast point-in-time joins,
   fits calibrated gradient boosting, validates it out of time beside an RFM heuristic, registers
   `propensity` and passes it through the same champion/challenger gate.
8. **score_propensity** writes a purchase probability and its decile for every customer to
   `marts.customer_scores`: the same plan, mapped shards and merge (deciles over all shards).

9. **read_experiments** reads every experiment version back once goal windows have passed: each
   arm against control and the other arms, on the goal and in money, with always-valid intervals
   (`marts.fct_experiment_results`), and everyone against the global holdout
   (`marts.fct_program_readout`); pauses harm, optionally ships winners
   (`activation.audience_status`, `experiments.audit_log`).
10. **decide_audiences** gives every customer one decision for the day: the audience with the best
   priority (then score) among those they qualify for and can be reached in (consent in force,
   frequency caps, suppressions), or the default experience. Holdout and variant groups go to
   `experiments.assignments` (a stable hash of customer, audience and salt).
11. **monitor_drift** runs Evidently drift checks of the propensity features, the predictions and the
   recommendations against the training day of the model version in use: reports under
   `reports/drift/ds=<ds>/`, `monitoring.drift_columns`, `monitoring.drift_summary` and
   `channels.model_health`.
12. **publish_channels** checks the treated customers' rows (consent, erasure, no control group, one
   decision, the same recommendations in every channel), then writes `channels.<channel>`, the files
   `exports/<channel>/ds=<ds>/<audience>.csv|parquet` with `manifest.json`, and the marketer summary
   under `reports/audiences/`. With `monitoring.on_dataset_drift: block_exports`, dataset drift
   stops it before anything is published.
13. **build_kpi_report** writes the marketer KPI report `reports/kpi/kpi_<ds>.html`: CX trends with
   intervals, retention curves, churn by NPS answer, audience sizes, experiment readouts, drift.

The recommender (4-5) and the propensity branch (6-8) both start after build_metrics; a failure in
one does not stop the other. The audiences (10-12) need both.

Every task reads data up to the end of `ds` and replaces only what it writes for `ds`, so
rerunning or backfilling any date is safe. Tasks that write the warehouse share the 1-slot
`warehouse` pool (DuckDB allows one writer); the scoring shards never open it. Run one date: `make run DS=YYYY-MM-DD`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import TaskGroup, dag, get_current_context, task, task_group
from airflow.timetables.interval import CronDataIntervalTimetable

from ml.callbacks import log_task_failure
from ml.config import load_config

# The schedule comes from config/personalization.yml: a small local file, read when Airflow parses
# this file (no database or network at parse time).
SCHEDULE = load_config().schedule
WAREHOUSE_POOL = "warehouse"


def sharded_scoring(group_id: str, plan_stage: str, shard_stage: str, merge_stage: str) -> TaskGroup:
    """A scoring stage as a task group over customer shards (ml/shards.py): `plan` and `merge` open
    the warehouse (its pool); `score_shard` is mapped over the plan's shards and opens only the
    plan's files, so the shards run side by side on every free worker slot."""

    @task_group(group_id=group_id)
    def sharded() -> None:
        @task(task_id="plan", pool=WAREHOUSE_POOL)
        def plan() -> list[dict[str, object]]:
            from ml import stages

            return getattr(stages, plan_stage)(get_current_context()["ds"])

        @task(task_id="score_shard", map_index_template="{{ shard_label }}")
        def score_shard(shard: int, shards: int) -> dict[str, object]:
            from ml import stages

            context = get_current_context()
            context["shard_label"] = f"shard {shard + 1} of {shards}"  # type: ignore[typeddict-unknown-key]
            return getattr(stages, shard_stage)(context["ds"], shard, shards)

        @task(task_id="merge", pool=WAREHOUSE_POOL)
        def merge(shard_results) -> dict[str, object]:
            from ml import stages

            return getattr(stages, merge_stage)(get_current_context()["ds"], len(shard_results))

        merge(score_shard.expand_kwargs(plan()))

    return sharded()


@dag(
    dag_id="nightly_personalization",
    doc_md=__doc__,
    # Data-interval semantics: the 02:00 run builds the day that just ended (ds = interval start).
    schedule=CronDataIntervalTimetable(SCHEDULE.cron, timezone="UTC"),
    start_date=dt.datetime.combine(SCHEDULE.start_date, dt.time(), tzinfo=dt.UTC),
    catchup=SCHEDULE.catchup,
    max_active_runs=1,
    tags=["personalization"],
    default_args={
        "retries": SCHEDULE.retries,
        "retry_delay": dt.timedelta(minutes=SCHEDULE.retry_delay_minutes),
        "on_failure_callback": log_task_failure,
    },
)
def nightly_personalization():
    @task(pool=WAREHOUSE_POOL)
    def load_landing() -> dict[str, int]:
        from ml.stages import load_landing_files

        return load_landing_files(get_current_context()["ds"])

    @task(pool=WAREHOUSE_POOL)
    def build_staging() -> dict[str, int]:
        from ml.stages import build_staging

        return build_staging(get_current_context()["ds"])

    @task(pool=WAREHOUSE_POOL)
    def build_metrics() -> None:
        from ml.stages import build_metrics

        build_metrics(get_current_context()["ds"])

    @task(pool=WAREHOUSE_POOL)
    def train_recommender() -> dict[str, object]:
        from ml.stages import train_recommender

        return train_recommender(get_current_context()["ds"])

    @task(pool=WAREHOUSE_POOL)
    def build_feature_store() -> dict[str, int]:
        from ml.stages import build_feature_store

        return build_feature_store(get_current_context()["ds"])

    @task(pool=WAREHOUSE_POOL)
    def train_propensity() -> dict[str, object]:
        from ml.stages import train_propensity

        return train_propensity(get_current_context()["ds"])

    @task(pool=WAREHOUSE_POOL)
    def decide_audiences() -> dict[str, object]:
        from ml.stages import decide_audiences

        return decide_audiences(get_current_context()["ds"])

    @task(pool=WAREHOUSE_POOL)
    def read_experiments() -> dict[str, object]:
        from ml.stages import read_experiments

        return read_experiments(get_current_context()["ds"])

    @task(pool=WAREHOUSE_POOL)
    def monitor_drift() -> dict[str, object]:
        from ml.stages import monitor_drift

        return monitor_drift(get_current_context()["ds"])

    @task(pool=WAREHOUSE_POOL)
    def publish_channels() -> dict[str, object]:
        from ml.stages import publish_channels

        return publish_channels(get_current_context()["ds"])

    @task(pool=WAREHOUSE_POOL)
    def build_kpi_report() -> dict[str, object]:
        from ml.stages import build_kpi_report

        return build_kpi_report(get_current_context()["ds"])

    metrics = load_landing() >> build_staging() >> build_metrics()
    score_recommendations = sharded_scoring(
        "score_recommendations", "plan_recommendations", "score_recommendation_shard", "merge_recommendations"
    )
    score_propensity = sharded_scoring("score_propensity", "plan_scores", "score_propensity_shard", "merge_scores")
    recommendations = metrics >> train_recommender() >> score_recommendations
    scores = metrics >> build_feature_store() >> train_propensity() >> score_propensity
    decisions = [recommendations, scores, metrics >> read_experiments()] >> decide_audiences()
    drift = [recommendations, scores] >> monitor_drift()
    [decisions, drift] >> publish_channels() >> build_kpi_report()


nightly_personalization()
