"""Run every stage for one logical date without Airflow: landing, dbt, models, audiences.

Usage: python -m ml.pipeline --ds 2026-10-31
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

from ml.activation.export import PublishCheckError
from ml.activation.population import MissingInputError
from ml.config import ConfigError, load_config
from ml.landing import LandingError
from ml.monitoring import ExportsBlockedError
from ml.recommender.data import MissingUpstreamError
from ml.run_lock import RunLockedError, exclusive_run
from ml.stages import (
    build_feature_store,
    build_kpi_report,
    decide_audiences,
    load_landing_files,
    monitor_drift,
    publish_channels,
    read_experiments,
    score_propensity,
    score_recommendations,
    train_propensity,
    train_recommender,
)
from ml.transform import DbtBuildError, run_dbt

log = logging.getLogger(__name__)


def run(ds: str, full_refresh: bool = False, models: bool = True) -> None:
    """Build the warehouse for `ds`: every stage reads data up to the end of `ds` only.

    Daily facts are incremental (ds and a short lookback are replaced); `full_refresh` rebuilds
    them from all history up to `ds`, which gives the same partitions. Without `models`, only the
    warehouse is built (a backfill of the metrics layer; no MLflow runs, no scores).
    """
    from ml.erasure import erasure_problems, log_erasure_problems

    dt.date.fromisoformat(ds)
    load_landing_files(ds)
    run_dbt("build", ds, *(["--full-refresh"] if full_refresh else []))
    log_erasure_problems(erasure_problems())
    if not models:
        return
    train_recommender(ds)
    score_recommendations(ds)
    build_feature_store(ds)
    train_propensity(ds)
    score_propensity(ds)
    read_experiments(ds)
    decide_audiences(ds)
    monitor_drift(ds)
    publish_channels(ds)
    build_kpi_report(ds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ds", help="logical date YYYY-MM-DD (default: the demo end date from config)")
    parser.add_argument("--summary", action="store_true", help="print what was produced")
    parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental tables from all history")
    parser.add_argument("--warehouse-only", action="store_true", help="load landing and dbt build; no models")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        ds = args.ds or load_config().demo.end_date.isoformat()
        with exclusive_run(f"ml.pipeline --ds {ds}"):
            run(ds, full_refresh=args.full_refresh, models=not args.warehouse_only)
    except (
        RunLockedError,
        ConfigError,
        LandingError,
        DbtBuildError,
        MissingUpstreamError,
        MissingInputError,
        PublishCheckError,
        ExportsBlockedError,
        ValueError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.summary:
        from ml.summary import print_summary

        print_summary(ds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
