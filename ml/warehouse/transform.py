"""Run the dbt project in-process for a logical date."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping

from ml.constants import FEATURE_GRID_ANCHOR
from ml.errors import PlatformError
from ml.paths import data_dir, dbt_project_dir
from ml.warehouse.engine import ENGINES, warehouse_engine
from ml.warehouse.project import staging_checks_version

log = logging.getLogger(__name__)


class DbtBuildError(PlatformError, RuntimeError):
    """dbt failed: a model did not build or a data test failed; the message lists which."""


def dbt_vars(ds: dt.date, config_vars: Mapping[str, object]) -> dict:
    """The dbt vars for a run: the logical date, the settings the orchestrator passes in
    (ml.orchestration.config.PlatformConfig.dbt_vars: the metrics settings and the feature snapshot grid) and the
    project's own fixed values."""
    return {
        "ds": ds.isoformat(),
        **config_vars,
        "feature_grid_anchor": FEATURE_GRID_ANCHOR.isoformat(),
        "checks_version": staging_checks_version(),
    }


# The engines the dbt project builds on (dbt_project/profiles.yml); engine-specific SQL sits
# behind adapter.dispatch macros in dbt_project/macros/engine.sql. The nightly stages build on the
# warehouse's engine (PZ_WAREHOUSE_ENGINE, ml.warehouse.engine), so the Python stages after them read
# what dbt built.
DBT_TARGETS = ENGINES


def dbt_args(
    command: str, ds: dt.date, config_vars: Mapping[str, object], *extra: str, target: str | None = None
) -> list[str]:
    target = target or warehouse_engine()
    if target not in DBT_TARGETS:
        raise DbtBuildError(f"{target!r} is not a target of dbt_project/profiles.yml: use one of {DBT_TARGETS}.")
    dbt_dir = data_dir() / "dbt"
    return [
        *command.split(),  # "build", "test", "docs generate"
        "--target",
        target,
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
        json.dumps(dbt_vars(ds, config_vars)),
        *extra,
    ]


def run_dbt(
    command: str, ds: dt.date, config_vars: Mapping[str, object], *extra: str, target: str | None = None
) -> None:
    """Invoke dbt (build, run, test, docs generate) for `ds` on `target` (the warehouse's engine
    unless given); raise DbtBuildError on any failure."""
    from dbt.cli.main import dbtRunner

    data_dir().mkdir(parents=True, exist_ok=True)
    result = dbtRunner().invoke(dbt_args(command, ds, config_vars, *extra, target=target))
    if result.success:
        return
    failures = []
    if result.result is not None and hasattr(result.result, "results"):
        for node_result in result.result.results:
            if str(node_result.status) in {"error", "fail", "runtime error"}:
                failures.append(f"{node_result.node.unique_id}: {node_result.message}")
    detail = "\n  ".join(failures) if failures else str(result.exception)
    raise DbtBuildError(f"dbt {command} failed for ds={ds}:\n  {detail}")


# A test runs in the first layer where all its parents exist: with dbt's default ("eager"), a
# relationship test from a mart to staging would run in the staging build, before the mart exists.
LAYER_TESTS = ("--indirect-selection", "buildable")


def build_staging(ds: dt.date, config_vars: Mapping[str, object], full_refresh: bool = False) -> dict[str, int]:
    """The build_staging stage: dbt build of staging, quarantine, reconciliation and the erasure
    ledger with their tests (a failure stops the run); then erased customers' personal fields are
    emptied in raw.* and the row-keeping staging models, and the erasure requests a person must look
    at are logged and sent as alerts."""
    from ml.warehouse.erasure import erasure_problems, log_erasure_problems, scrub_personal_fields

    run_dbt(
        "build", ds, config_vars, "--selector", "staging", *LAYER_TESTS, *(["--full-refresh"] if full_refresh else [])
    )
    scrubbed = scrub_personal_fields()
    problems = erasure_problems()
    log_erasure_problems(problems)
    return {
        "erasure_requests_to_check": len(problems),
        "personal_fields_scrubbed": scrubbed,
        "alerts": [f"erasure needs a person: {problem.message}" for problem in problems],
    }


def build_metrics(ds: dt.date, config_vars: Mapping[str, object], full_refresh: bool = False) -> None:
    """The build_metrics stage: dbt build of the metric marts, with their tests and unit tests."""
    run_dbt(
        "build", ds, config_vars, "--selector", "metrics", *LAYER_TESTS, *(["--full-refresh"] if full_refresh else [])
    )


def build_experiment_inputs(ds: dt.date, config_vars: Mapping[str, object]) -> None:
    """What read_experiments reads, for ds (selector `experiments`, dbt_project/models/experiments):
    exposures and the global holdout's inputs, from the tables the Python stages wrote, with their tests."""
    run_dbt("build", ds, config_vars, "--selector", "experiments", *LAYER_TESTS)


def check_outputs(ds: dt.date, config_vars: Mapping[str, object]) -> dict[str, object]:
    """The check_outputs stage: the tests of the tables the Python stages wrote for ds (declared as dbt
    sources in dbt_project/models/outputs) and the report models built on them (rpt_*). A declared
    table that no stage wrote (a channel not configured, a stage that has not run) is left out and named."""
    from ml.warehouse.declared import declared_tables
    from ml.warehouse.engine import open_warehouse
    from ml.warehouse.partitions import existing_tables

    with open_warehouse() as connection:
        missing = [
            f"{table.source}.{table.name}"
            for table in declared_tables().values()
            if table.name not in existing_tables(connection, table.schema)
        ]
    if missing:
        log.info("ds=%s check_outputs: not written, not tested: %s", ds, ", ".join(missing))
    # dbt ignores --exclude beside --selector: the `outputs` selector's paths, spelled out.
    excluded = ["--exclude", *(f"source:{name}+" for name in missing)] if missing else []
    selected = ["--select", "path:models/outputs", "path:models/reports"]
    run_dbt("build", ds, config_vars, *selected, *LAYER_TESTS, *excluded)
    return {"tables_not_written": missing}
