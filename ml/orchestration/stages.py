"""The nightly graph, written once: every stage with its function of `ds`, the stages it waits for,
the pool it holds, and whether it is sharded.

The Airflow DAG (dags/nightly_personalization.py), the in-process pipeline (ml.orchestration.pipeline)
and the stage table of docs/architecture.md (`python -m ml stages`) all read STAGES.
Each stage reads data up to the end of `ds` only and replaces what it writes for `ds`, so any date
can be rerun or backfilled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ml.dates import as_ds
from ml.errors import PlatformError
from ml.orchestration import entries
from ml.orchestration.settings import WAREHOUSE_POOL

if TYPE_CHECKING:
    from ml.mlops.sharding import ShardedScoring
    from ml.orchestration.config import PlatformConfig


@dataclass(frozen=True)
class Stage:
    name: str
    summary: str  # one paragraph for the DAG's docs and docs/architecture.md
    # The whole stage for one ds, in one process: run(ds, config, **options) (ml.orchestration.entries).
    run: Callable[..., object] | None = None
    upstream: tuple[str, ...] = ()
    pool: str | None = WAREHOUSE_POOL
    # A sharded stage: its scoring (ml.mlops.sharding.ShardedScoring) made from the configuration; the
    # DAG maps its shards over workers, run_stage runs them in turn.
    shards: Callable[[PlatformConfig], ShardedScoring] | None = None
    rebuilds_history: bool = False  # a dbt stage: `--full-refresh` rebuilds incremental tables
    # Airflow fails a try that runs longer (execution_timeout): a hung engine fails the night, named.
    timeout_minutes: int = 60
    # Run options the stage takes besides ds, from the DAG run's params or the command line.
    options: tuple[str, ...] = ()


# Run options a night can be given (`python -m ml run --allow-stale`, or the DAG's params).
RUN_OPTIONS = {
    "allow_stale": "run although ds is more than schedule.max_staleness_days past the newest landed row "
    "(a deliberate backfill)",
}


STAGES: tuple[Stage, ...] = (
    Stage(
        "load_landing",
        "Copies the landing files that arrived (or changed) since the last load into `raw.*` (text, with "
        "file and row lineage; ledger `raw.landing_files`); a broken file fails here with its name and line.",
        entries.load_landing,
        timeout_minutes=30,
        options=("allow_stale",),
    ),
    Stage(
        "build_staging",
        "`dbt build` of staging, quarantine, reconciliation and the erasure ledger with their tests: new "
        "rows are parsed once, every row gets its status for `ds` and only changed statuses are written; "
        "bad rows go to quarantine with a reason, counts that do not reconcile (per table and per file) fail "
        "the run; erasure requests a person must check are logged as warnings.",
        entries.build_staging,
        ("load_landing",),
        rebuilds_history=True,
        timeout_minutes=90,
    ),
    Stage(
        "build_metrics",
        "`dbt build` of the metric marts (CSAT, CES, NPS, retention, customer 360, features) with their "
        "tests and unit tests; daily facts replace `ds` and a short lookback.",
        entries.build_metrics,
        ("build_staging",),
        rebuilds_history=True,
        timeout_minutes=90,
    ),
    Stage(
        "train_recommender",
        "Searches the recommender settings (LightFM, EASE) weekly (other nights continue the last night's "
        "fits), evaluates the model beside the popularity baseline on the holdout, logs and registers it in "
        "MLflow (`recommender`); it becomes `champion` only if it beats the baseline and the current champion "
        "by the margin.",
        entries.train_recommender,
        ("build_metrics",),
        timeout_minutes=180,  # the weekly search at a million customers
    ),
    Stage(
        "score_recommendations",
        "Top K items for every customer known at `ds` into `marts.customer_recommendations` with the "
        "champion, popular items for customers with too little history: `plan` reads the warehouse once, "
        "writes what the online service re-ranks with (`marts.item_neighbors` from the model's item-item "
        "structure, `marts.popular_items`) and splits the customers into `scoring.shards` shards, "
        "`score_shard` is mapped over them (no pool: more workers, a faster night), `merge` writes the partition.",
        upstream=("train_recommender",),
        shards=entries.recommendation_scoring,
    ),
    Stage(
        "build_feature_store",
        "Exports the daily customer feature snapshots (`marts.customer_features_daily`) to the Feast "
        "repository's source, one file per snapshot date (only the dates whose rows changed are written; on "
        "Spark Feast's Spark offline store reads the table itself and nothing is exported), applies the Feast "
        "definitions and writes to the online store the customers whose features changed since the night it holds "
        "(day counts compared as the dates they count from).",
        entries.build_feature_store,
        ("build_metrics",),
    ),
    Stage(
        "train_propensity",
        "Builds a training set over weekly cutoffs from the Feast source's snapshots of those dates (only "
        "the window's dates are read), fits calibrated gradient "
        "boosting, validates it out of time beside an RFM heuristic, registers `propensity` and passes it "
        "through the same champion gate (nothing when the rows are the last version's).",
        entries.train_propensity,
        ("build_feature_store",),
        timeout_minutes=120,
    ),
    Stage(
        "score_propensity",
        "A calibrated purchase probability and its decile for every customer into `marts.customer_scores`: "
        "the same plan (which reads every customer's features of `ds` from the Feast offline store once), "
        "mapped shards (each reads its slice of the plan's features) and merge (deciles over all shards).",
        upstream=("train_propensity",),
        shards=entries.propensity_scoring,
    ),
    Stage(
        "read_experiments",
        "`dbt build` of the readouts' inputs for `ds` (exposures, the global holdout's customers: "
        "`models/experiments`), then reads every experiment version back once goal windows have passed: each "
        "arm against control and the other arms, on the goal and in money, with always-valid intervals "
        "(`marts.fct_experiment_results`), and everyone against the global holdout "
        "(`marts.fct_program_readout`); pauses harm and optionally ships winners "
        "(`activation.audience_status`, `experiments.audit_log`).",
        entries.read_experiments,
        ("build_metrics",),
    ),
    Stage(
        "train_uplift",
        "Learns each campaign arm's effect per customer (DR-learner) from the randomized sends whose goal "
        "windows ended by `ds` (landed `campaign_sends` and the audiences' own holdouts; a stable sample of "
        "customers above `uplift.training_max_sends`), with features from "
        "the feature store as of each send; gates every arm on held-out customers (Qini interval above zero, "
        "ahead of propensity-ranked targeting), estimates each campaign's uplift policy against the rules "
        "off-policy (IPW, SNIPW, DR with bootstrap intervals; it ships if its DR lower bound beats the rules), "
        "registers `uplift` in MLflow (`marts.uplift_arms`, `marts.uplift_policy_value`), then scores every "
        "customer known at `ds` into `marts.customer_uplift` (uplift, its standard error, expected "
        "incremental profit, whether the arm serves).",
        entries.train_uplift,
        ("build_feature_store", "read_experiments"),
        timeout_minutes=120,
    ),
    Stage(
        "decide_audiences",
        "One decision per customer for the day: the audience with the best priority (then score) among "
        "those they qualify for and can be reached in (consent, frequency caps, suppressions), or the "
        "default experience; holdout and arm assignments into `experiments.assignments`, each audience's "
        "funnel into `activation.audience_funnel`.",
        entries.decide_audiences,
        ("score_recommendations", "score_propensity", "train_uplift"),
    ),
    Stage(
        "monitor_drift",
        "Evidently drift of the propensity features, the predictions and the recommendations against a "
        "reference that is never ds (the days up to the training day of the model version in use, or up to the "
        "day before ds): reports under `reports/drift/ds=<ds>/`, "
        "`monitoring.drift_columns`, `monitoring.drift_summary` and `channels.model_health`; one MLflow run per "
        "night in the experiment `drift` to chart it over time.",
        entries.monitor_drift,
        ("score_recommendations", "score_propensity"),
    ),
    Stage(
        "publish_channels",
        "Checks the treated customers' rows (consent, erasure, no control group, one decision, the same "
        "recommendations in every channel), then writes `channels.<channel>`, the files "
        "`exports/<channel>/ds=<ds>/<audience>.csv|parquet` with `manifest.json`, and the marketer summary "
        "under `reports/audiences/`. With `monitoring.on_dataset_drift: block_exports`, dataset drift "
        "stops it before anything is published.",
        entries.publish_channels,
        ("decide_audiences", "monitor_drift"),
    ),
    Stage(
        "check_outputs",
        "`dbt build` of what the Python stages wrote for `ds`: the tests of their tables (declared as dbt "
        "sources: unique keys, accepted values, not null) and the report models (`rpt_*`) on them; a "
        "failing test stops the night here, before the KPI report.",
        entries.check_outputs,
        ("publish_channels",),
    ),
    Stage(
        "publish_serving_snapshot",
        "The online service's snapshot of the night: per customer the decision of every channel (exactly "
        "the rows of `channels.<channel>`), consent, holdout and erasure state, recommendations and what "
        "they bought; the catalog, item neighbors and popular items, in one SQLite file "
        "`serving/snapshot_ds=<ds>.sqlite`, published by an atomic rename of `serving/CURRENT` (never "
        "back to an older night). The service (`python -m ml serve`) swaps to it without a restart.",
        entries.publish_serving_snapshot,
        ("check_outputs",),
    ),
    Stage(
        "build_kpi_report",
        "The marketer KPI report `reports/kpi/kpi_<ds>.html`: the program readout, CX trends with "
        "intervals, retention curves, churn by NPS answer, audiences, experiment readouts, drift.",
        entries.build_kpi_report,
        ("check_outputs",),
    ),
)


class UnknownStageError(PlatformError):
    """A stage name that the registry does not have."""


def stage(name: str) -> Stage:
    """The stage called `name`; the error lists the names there are."""
    for candidate in STAGES:
        if candidate.name == name:
            return candidate
    raise UnknownStageError(f"no stage {name!r}; the stages are: {', '.join(s.name for s in STAGES)}")


def stages_through(*last: str) -> tuple[Stage, ...]:
    """The stages named in `last` and every stage they wait for, directly or not, in run order."""
    needed, pending = set(), list(last)
    while pending:
        current = stage(pending.pop())
        if current.name not in needed:
            needed.add(current.name)
            pending.extend(current.upstream)
    return tuple(s for s in STAGES if s.name in needed)


def run_stage(current: Stage | str, ds: dt.date | str, config: PlatformConfig | None = None, **options) -> object:
    """Run one stage (or its name) for ds in this process: ds is parsed and the configuration loaded
    here, once, and handed down (the pipeline, tests and benchmarks; the DAG's tasks go through
    ml.orchestration.callbacks.run_in_task). A sharded stage runs its shards in turn."""
    from ml.orchestration.config import load_config

    current = stage(current) if isinstance(current, str) else current
    config = config if config is not None else load_config()
    day = as_ds(ds)
    if current.shards is not None:
        from ml.mlops.sharding import run_in_process

        return run_in_process(current.shards(config), day)
    return current.run(day, config, **options)


def plan_shards(ds: dt.date, config: PlatformConfig, current: Stage) -> list[dict[str, object]]:
    """The sharded stage's plan for ds: one small dict of kwargs per shard (Airflow maps over them)."""
    return [shard.as_kwargs() for shard in current.shards(config).plan(ds)]


def score_one_shard(ds: dt.date, config: PlatformConfig, current: Stage, shard: int, shards: int) -> dict[str, object]:
    """One shard of the sharded stage, from its plan's files."""
    from ml.mlops.sharding import Shard

    scoring = current.shards(config)
    return scoring.score_shard(Shard(scoring.stage, ds, shard, shards))


def merge_shards(ds: dt.date, config: PlatformConfig, current: Stage, shards: int) -> dict[str, object]:
    """The sharded stage's merge of its `shards` shards."""
    return current.shards(config).merge(ds, shards)


def markdown_table() -> str:
    """The stage table of docs/architecture.md (a test keeps the two equal)."""
    rows = ["| # | stage | waits for | pool | sharded | what it does |", "|---|---|---|---|---|---|"]
    for number, current in enumerate(STAGES, start=1):
        rows.append(
            f"| {number} | `{current.name}` | {', '.join(f'`{u}`' for u in current.upstream) or '-'} "
            f"| {current.pool or '-'} | {'yes' if current.shards else 'no'} | {current.summary} |"
        )
    return "\n".join(rows)


def dag_documentation() -> str:
    """The numbered stage list that opens the DAG's documentation in the Airflow UI."""
    return "\n".join(f"{number}. **{s.name}**: {s.summary}" for number, s in enumerate(STAGES, start=1))
