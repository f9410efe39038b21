"""Run the dbt project in-process for a logical date."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys

from ml.config import data_dir, dbt_project_dir, load_config, warehouse_path

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


# The engines the dbt project builds on (dbt_project/profiles.yml); engine-specific SQL sits
# behind adapter.dispatch macros in dbt_project/macros/engine.sql. The nightly stages build with
# DuckDB: the Python stages after them read the DuckDB warehouse.
DBT_TARGETS = ("duckdb", "spark")


def export_landing_for_spark() -> None:
    """Copy the raw landing tables from the DuckDB warehouse (ml.landing loads them there) to
    parquet under $PZ_DATA_DIR/spark/landing/<table>/, which the Spark target registers as the
    `raw` schema (macro register_landing_tables). Replaced whole each run, like the raw tables."""
    import duckdb

    folder = data_dir() / "spark" / "landing"
    with duckdb.connect(str(warehouse_path()), read_only=True) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "select table_name from information_schema.tables where table_schema = 'raw' order by 1"
            ).fetchall()
        ]
        if not tables:
            raise DbtBuildError(f"No raw tables in {warehouse_path()}: load the landing files first (ml.landing).")
        for table in tables:
            shutil.rmtree(folder / table, ignore_errors=True)
            (folder / table).mkdir(parents=True)
            connection.execute(f"copy raw.{table} to '{folder / table / 'part-0.parquet'}' (format parquet)")


def dbt_args(command: str, ds: str, *extra: str, target: str = "duckdb") -> list[str]:
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
        json.dumps(dbt_vars(ds)),
        *extra,
    ]


def run_dbt(command: str, ds: str, *extra: str, target: str = "duckdb") -> None:
    """Invoke dbt (build, run, test, docs generate) for `ds` on `target`; raise DbtBuildError on
    any failure."""
    from dbt.cli.main import dbtRunner

    data_dir().mkdir(parents=True, exist_ok=True)
    if target == "spark" and command.split()[0] in {"build", "run"}:
        export_landing_for_spark()
    result = dbtRunner().invoke(dbt_args(command, ds, *extra, target=target))
    if result.success:
        return
    failures = []
    if result.result is not None and hasattr(result.result, "results"):
        for node_result in result.result.results:
            if str(node_result.status) in {"error", "fail", "runtime error"}:
                failures.append(f"{node_result.node.unique_id}: {node_result.message}")
    detail = "\n  ".join(failures) if failures else str(result.exception)
    raise DbtBuildError(f"dbt {command} failed for ds={ds}:\n  {detail}")


def spark_session():
    """A SparkSession on the Spark target's catalog and warehouse (dbt_project/profiles.yml,
    output `spark`), to read what dbt built there. Only one process at a time can open the
    embedded metastore: not while dbt runs."""
    import jinja2
    import yaml
    from pyspark.sql import SparkSession

    profiles = yaml.safe_load((dbt_project_dir() / "profiles.yml").read_text())
    output = profiles["personalization"]["outputs"]["spark"]
    environment = jinja2.Environment()
    environment.globals["env_var"] = lambda name, default=None: os.environ.get(name, default)
    builder = SparkSession.builder.enableHiveSupport()
    # dbt-spark always turns ANSI mode off; so does this session, to read the same way.
    for key, value in {**output["server_side_parameters"], "spark.sql.ansi.enabled": "false"}.items():
        builder = builder.config(key, environment.from_string(str(value)).render())
    return builder.getOrCreate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run dbt for a logical date on one of the project's targets.")
    parser.add_argument("command", choices=["build", "run", "test"], help="the dbt command")
    parser.add_argument("--ds", required=True, help="the logical date, YYYY-MM-DD")
    parser.add_argument("--target", choices=DBT_TARGETS, default="duckdb")
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_dbt(args.command, args.ds, *extra, target=args.target)
    except DbtBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
