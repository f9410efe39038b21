"""Run the dbt project in-process for a logical date."""

from __future__ import annotations

import json
import logging

from ml.config import data_dir, dbt_project_dir, load_config

log = logging.getLogger(__name__)


class DbtBuildError(RuntimeError):
    """dbt failed: a model did not build or a data test failed; the message lists which."""


def dbt_vars(ds: str) -> dict:
    """The dbt vars for a run: the logical date, the metrics settings and the feature snapshot grid."""
    config = load_config()
    return {
        "ds": ds,
        **config.metrics.model_dump(),
        "feature_snapshot_days": config.propensity.feature_snapshot_days,
        "feature_snapshot_every_days": config.propensity.cutoff_every_days,
    }


def dbt_args(command: str, ds: str, *extra: str) -> list[str]:
    dbt_dir = data_dir() / "dbt"
    return [
        *command.split(),  # "build", "test", "docs generate"
        "--project-dir",
        str(dbt_project_dir()),
        "--profiles-dir",
        str(dbt_project_dir()),
        # Per data dir, so that two warehouses (tests, benchmarks) never share compiled state.
        "--target-path",
        str(dbt_dir / "target"),
        "--log-path",
        str(dbt_dir / "logs"),
        "--vars",
        json.dumps(dbt_vars(ds)),
        *extra,
    ]


def run_dbt(command: str, ds: str, *extra: str) -> None:
    """Invoke dbt (build, run, test, docs generate) for `ds`; raise DbtBuildError on any failure."""
    from dbt.cli.main import dbtRunner

    data_dir().mkdir(parents=True, exist_ok=True)
    result = dbtRunner().invoke(dbt_args(command, ds, *extra))
    if result.success:
        return
    failures = []
    if result.result is not None and hasattr(result.result, "results"):
        for node_result in result.result.results:
            if str(node_result.status) in {"error", "fail", "runtime error"}:
                failures.append(f"{node_result.node.unique_id}: {node_result.message}")
    detail = "\n  ".join(failures) if failures else str(result.exception)
    raise DbtBuildError(f"dbt {command} failed for ds={ds}:\n  {detail}")
