"""Airflow callbacks. Kept out of dags/ so that DAG files stay declarations."""

from __future__ import annotations

import logging

log = logging.getLogger("personalization.failures")


def log_task_failure(context) -> None:
    """One line per failed task: which task, which ds, why; what an on-call engineer greps for."""
    task_instance = context.get("task_instance")
    reason = str(context.get("exception") or "unknown reason").replace("\n", " | ")
    log.error(
        "TASK FAILED dag=%s task=%s ds=%s try=%s reason=%s",
        getattr(task_instance, "dag_id", "?"),
        getattr(task_instance, "task_id", "?"),
        context.get("ds"),
        getattr(task_instance, "try_number", "?"),
        reason[:2000],
    )
