"""The `schedule` and `scoring` sections: when the nightly DAG runs and how scoring is sharded."""

from __future__ import annotations

import datetime as dt
import os

from pydantic import Field

from ml.errors import ConfigError
from ml.settings import StrictSettings

# DuckDB allows one writer: every task that opens the warehouse holds a slot of this Airflow pool
# (ml.orchestration.dag_runs creates it), of one slot unless PZ_WAREHOUSE_POOL_SLOTS says more: a
# Spark warehouse with a shared metastore (docker-compose.yml, profile spark) takes tasks side by
# side, each replacing only its own partitions. The embedded Derby metastore of a local Spark
# session admits one process, so the local default stays 1. The scoring shards read only their
# plan's files.
WAREHOUSE_POOL = "warehouse"
WAREHOUSE_POOL_SLOTS_VARIABLE = "PZ_WAREHOUSE_POOL_SLOTS"


def warehouse_pool_slots() -> str:
    """Slots of the warehouse pool: PZ_WAREHOUSE_POOL_SLOTS, 1 when unset."""
    slots = os.environ.get(WAREHOUSE_POOL_SLOTS_VARIABLE, "").strip() or "1"
    if not slots.isdigit() or int(slots) < 1:
        raise ConfigError(f"{WAREHOUSE_POOL_SLOTS_VARIABLE}={slots!r}: give a whole number of slots, 1 or more")
    return slots


class ScheduleConfig(StrictSettings):
    """When the nightly DAG runs; read by dags/ when Airflow parses the DAG file."""

    start_date: dt.date = Field(dt.date(2026, 5, 4), description="First logical date the DAG may run for.")
    catchup: bool = Field(False, description="Let the scheduler create runs for missed dates since start_date.")
    cron: str = Field("0 2 * * *", description="When a night runs (UTC); it builds the day that just ended.")
    demo_days: int = Field(3, gt=0, description="`make demo` runs the DAG for this many last days of demo data.")
    retries: int = Field(1, ge=0, description="Retries of a failed task before the run fails.")
    retry_delay_minutes: float = Field(
        5,
        ge=0,
        description="Wait before a retry (errors a retry cannot fix, such as a "
        "missing landing folder or an invalid configuration, fail at once without one).",
    )
    run_timeout_hours: float = Field(
        12, gt=0, description="A night still running after this long is failed (Airflow's dagrun_timeout)."
    )
    max_staleness_days: int = Field(
        2,
        ge=0,
        description="A night whose ds is more than this many days past the newest landed row refuses to run "
        "(stale audiences); `--allow-stale` overrides it for a deliberate backfill.",
    )


class ScoringConfig(StrictSettings):
    """How the nightly scoring stages split their customers (ml.orchestration.shards)."""

    shards: int = Field(
        4,
        ge=1,
        le=1024,
        description="Customer shards per scoring stage: Airflow maps one task over each, so up to this "
        "many workers score at once. Set it to at least the worker slots (workers x concurrency).",
    )


class NotificationsConfig(StrictSettings):
    """Who hears about a failed night, a gate that keeps the baseline, drift that blocks the exports and
    an erasure that needs a person (ml.orchestration.notifications). Nothing configured: the log only."""

    webhook_url: str | None = Field(
        None,
        description='POST {"text": message} here (a Slack incoming webhook, or any receiver of that JSON). '
        "Written as ${NAME}, it is read from the environment variable NAME, so the secret stays out of the file.",
    )
    email_to: list[str] = Field(
        default_factory=list, description="Send each message to these addresses through Airflow's SMTP connection."
    )
    smtp_conn_id: str = Field("smtp_default", description="Airflow connection of the SMTP server for email_to.")
    timeout_seconds: float = Field(5, gt=0, le=60, description="A notification gives up after this long.")
