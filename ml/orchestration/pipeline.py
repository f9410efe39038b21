"""Run the nightly stages for one logical date without Airflow, in the registry's order.

Usage: python -m ml pipeline --ds 2026-10-31 [--warehouse-only] [--stage NAME ...] [--through NAME ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging

from ml.dates import as_ds
from ml.errors import report_errors
from ml.orchestration.config import PlatformConfig, load_config
from ml.orchestration.stages import RUN_OPTIONS, STAGES, Stage, UnknownStageError, run_stage, stage, stages_through
from ml.warehouse.run_lock import exclusive_run

log = logging.getLogger(__name__)

# The last stage of a warehouse-only run (a backfill of the metrics layer: no MLflow runs, no scores).
LAST_WAREHOUSE_STAGE = "build_metrics"


def run(
    ds: dt.date,
    config: PlatformConfig,
    full_refresh: bool = False,
    models: bool = True,
    only: list[str] | None = None,
    allow_stale: bool = False,
) -> None:
    """Run the stages for `ds` in order: every stage reads data up to the end of `ds` only.

    Daily facts are incremental (ds and a short lookback are replaced); `full_refresh` rebuilds
    them from all history up to `ds`, which gives the same partitions. Without `models`, only the
    warehouse is built. `only` runs the named stages alone (their inputs must already exist).
    `allow_stale` runs a ds far past the newest landed row (schedule.max_staleness_days).
    """
    options = {"allow_stale": allow_stale}
    selected: tuple[Stage, ...] = (
        tuple(stage(name) for name in only) if only else STAGES if models else stages_through(LAST_WAREHOUSE_STAGE)
    )
    for current in selected:
        log.info("ds=%s stage %s", ds, current.name)
        keywords = {name: options[name] for name in current.options}
        if current.rebuilds_history:
            keywords["full_refresh"] = full_refresh
        run_stage(current, ds, config, **keywords)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ds", help="logical date YYYY-MM-DD (default: the demo end date from config)")
    parser.add_argument("--summary", action="store_true", help="print what was produced")
    parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental tables from all history")
    parser.add_argument("--warehouse-only", action="store_true", help="load landing and dbt build; no models")
    parser.add_argument("--allow-stale", action="store_true", help=RUN_OPTIONS["allow_stale"])
    parser.add_argument("--stage", action="append", help="run only this stage (repeatable; see python -m ml stages)")
    parser.add_argument(
        "--through",
        action="append",
        metavar="STAGE",
        help="run this stage and every stage it waits for, nothing else (repeatable: the stages of each)",
    )
    args = parser.parse_args(argv)
    if args.through:
        if args.stage or args.warehouse_only:
            parser.error("--through runs the stages it needs: give it alone, without --stage or --warehouse-only")
        try:
            args.stage = [current.name for current in stages_through(*args.through)]
        except UnknownStageError as error:
            parser.error(str(error))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def body() -> int:
        config = load_config()
        ds = as_ds(args.ds) if args.ds else config.demo.end_date
        with exclusive_run(f"ml.orchestration.pipeline --ds {ds}"):
            run(
                ds,
                config,
                full_refresh=args.full_refresh,
                models=not args.warehouse_only,
                only=args.stage,
                allow_stale=args.allow_stale,
            )
        if args.summary:
            from ml.reports.summary import print_summary

            print_summary(ds, config.activation)
        return 0

    return report_errors(body)
