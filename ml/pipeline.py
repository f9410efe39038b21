"""Run the stages that exist so far for one logical date: load landing, then dbt build.

Usage: python -m ml.pipeline --ds 2026-10-31
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

from ml.config import ConfigError, landing_dir, load_config, warehouse_path
from ml.landing import LandingError, load_landing
from ml.transform import DbtBuildError, run_dbt

log = logging.getLogger(__name__)


def run(ds: str) -> None:
    """Build the warehouse for `ds`: every stage reads data up to the end of `ds` only."""
    dt.date.fromisoformat(ds)
    load_landing(landing_dir(), warehouse_path())
    run_dbt("build", ds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ds", help="logical date YYYY-MM-DD (default: the demo end date from config)")
    parser.add_argument("--summary", action="store_true", help="print what was produced")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        ds = args.ds or load_config().demo.end_date.isoformat()
        run(ds)
    except (ConfigError, LandingError, DbtBuildError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.summary:
        from ml.summary import print_summary

        print_summary(ds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
