"""Airflow callbacks and the task wrapper. Kept out of dags/ so that DAG files stay declarations.

A failed task writes one log line and one record (task, cause, time) to
`$AIRFLOW_HOME/failures/<run_id>.jsonl`; when the night then fails, one notification names the first
task that failed and its cause, and `python -m ml run` ends on that same line instead of
the list of tasks that never ran.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import time
from pathlib import Path

from ml.dates import as_ds
from ml.errors import PlatformError

log = logging.getLogger("personalization.failures")


def failures_file(run_id: str) -> Path:
    """Where the failed tasks of one DAG run are recorded."""
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    return home / "failures" / (re.sub(r"[^\w.+-]", "_", run_id) + ".jsonl")


def first_failure(run_id: str) -> dict[str, str] | None:
    """The earliest failed task of the run and its cause, or None when no task failed."""
    path = failures_file(run_id)
    if not path.exists():
        return None
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return min(records, key=lambda record: record["failed_at"]) if records else None


def cause_of(exception: BaseException | str | None) -> str:
    """One line: the error's class and message (a PlatformError already names the file, key or fix)."""
    if exception is None:
        return "unknown reason (see the task log)"
    if isinstance(exception, BaseException):
        original = exception.__cause__ if isinstance(exception.__cause__, PlatformError) else exception
        text = f"{type(original).__name__}: {original}"
    else:
        text = str(exception)
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())[:2000]


def log_task_failure(context) -> None:
    """One line per failed task (what an on-call engineer greps for) and its record for the run."""
    task_instance = context.get("task_instance")
    task_id = getattr(task_instance, "task_id", "?")
    reason = cause_of(context.get("exception"))
    log.error(
        "TASK FAILED dag=%s task=%s ds=%s try=%s reason=%s",
        getattr(task_instance, "dag_id", "?"),
        task_id,
        context.get("ds"),
        getattr(task_instance, "try_number", "?"),
        reason,
    )
    run_id = context.get("run_id") or getattr(task_instance, "run_id", None)
    if run_id:
        path = failures_file(run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"task": task_id, "reason": reason, "failed_at": dt.datetime.now(dt.UTC).isoformat()}
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def night_failure_message(dag_id: str, ds: str | None, run_id: str | None, reason: str | None = None) -> str:
    """The one line that says why a night failed: its first failing task and that task's cause."""
    failure = first_failure(run_id) if run_id else None
    if failure:
        return f"{dag_id} ds={ds} FAILED at {failure['task']}: {failure['reason']}"
    if reason == "timed_out":
        return f"{dag_id} ds={ds} FAILED: the night ran past schedule.run_timeout_hours and was stopped"
    return f"{dag_id} ds={ds} FAILED: {reason or 'no task recorded a cause (see the task logs)'}"


def notify_night_failed(context) -> None:
    """The DAG's failure callback: one notification per failed night."""
    from ml.orchestration.config import load_config
    from ml.orchestration.notifications import send

    dag_run = context.get("dag_run")
    interval_start = getattr(dag_run, "data_interval_start", None)  # ds, when the context does not carry it
    ds = context.get("ds") or (interval_start.date().isoformat() if interval_start else None)
    message = night_failure_message(
        getattr(dag_run, "dag_id", "?"), ds, getattr(dag_run, "run_id", None), context.get("reason")
    )
    try:
        settings = load_config().notifications
    except PlatformError as error:  # an invalid configuration may be why the night failed: log only
        log.error("%s (not sent: %s)", message, cause_of(error))
        return
    send(settings, message, context)


def run_in_task(stage_name: str, function, ds: str, *arguments, **keywords):
    """Run a stage's function inside an Airflow task: `function(ds, config, *arguments, **keywords)`,
    with ds parsed from the task's template and the configuration loaded here. An error a retry cannot
    fix (a PlatformError: configuration, missing or corrupted input, a refused ds) fails the task at
    once, without the retry; any other error keeps it. A result's `alerts` (a gate that keeps the
    baseline, an erasure that needs a person) are sent through the configured notifiers."""
    from airflow.sdk.exceptions import AirflowFailException

    from ml.orchestration.config import load_config
    from ml.orchestration.notifications import send
    from ml.orchestration.progress import record_stage

    started = time.perf_counter()
    try:
        config = load_config()
        result = function(as_ds(ds), config, *arguments, **keywords)
    except PlatformError as error:
        record_stage(stage_name, ds, time.perf_counter() - started, error=cause_of(error))
        raise AirflowFailException(cause_of(error)) from error
    except Exception as error:
        record_stage(stage_name, ds, time.perf_counter() - started, error=cause_of(error))
        raise
    record_stage(stage_name, ds, time.perf_counter() - started, result)
    alerts = result.get("alerts") if isinstance(result, dict) else None
    for alert in alerts or []:
        send(config.notifications, f"{stage_name} ds={ds}: {alert}")
    return result
