"""Benchmark the generator and the staging build at several sizes; write bench/results.md.

Each stage runs in its own process, so its wall time and peak memory (max RSS, from wait4) are
its own. Usage: python bench/bench_foundation.py [--sizes 10000 100000 1000000] [--days 180]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys

import duckdb
from common import WORK, machine, run_stage, write_section

TARGET_GENERATION_SECONDS = 180
TARGET_GENERATION_GB = 8
DS = "2026-10-31"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--bad-rows", type=float, default=0.005)
    args = parser.parse_args()

    rows = []
    for customers in args.sizes:
        data_dir = WORK / f"c{customers}"
        shutil.rmtree(data_dir, ignore_errors=True)
        env = {**os.environ, "PZ_DATA_DIR": str(data_dir)}
        generate = [
            sys.executable,
            "-m",
            "ml",
            "synthetic",
            "--customers",
            str(customers),
            "--days",
            str(args.days),
            "--bad-rows",
            str(args.bad_rows),
        ]
        load = [sys.executable, "-m", "ml", "landing"]
        build = [sys.executable, "-m", "ml", "dbt", "build", "--ds", DS]
        timings = {}
        for stage, command in (("generate", generate), ("load landing", load), ("dbt build", build)):
            timings[stage] = run_stage(command, env)
            print(
                f"{customers:>9,} customers  {stage:<13} {timings[stage][0]:8.1f} s  {timings[stage][1]:6.2f} GB",
                flush=True,
            )
        with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
            rows_read = connection.execute(
                "select sum(rows_read) from audit.landing_reconciliation where ds = ?", [DS]
            ).fetchone()[0]
            events = connection.execute("select count(*) from raw.events").fetchone()[0]
        rows.append((customers, timings, rows_read, events))
        shutil.rmtree(data_dir, ignore_errors=True)

    lines = [
        "## Foundation: generator and staging build",
        "",
        f"Run {dt.date.today().isoformat()} with `python bench/bench_foundation.py` on {machine()}.",
        f"{args.days} days of history, bad-row rate {args.bad_rows}. Peak memory is the stage process's max RSS. "
        f"DuckDB's cap during the dbt build: {os.environ.get('PZ_DUCKDB_MEMORY_LIMIT', '8GB')} "
        "(PZ_DUCKDB_MEMORY_LIMIT; at 1M customers customer_features_daily needs more than the default 8GB).",
        f"Target: 1M customers x 180 days generated in at most {TARGET_GENERATION_SECONDS} s and "
        f"{TARGET_GENERATION_GB} GB.",
        "",
        "| customers | landing rows | events | generate s | generate GB | load s | load GB "
        "| dbt build s | dbt build GB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for customers, timings, rows_read, events in rows:
        g, lo, b = timings["generate"], timings["load landing"], timings["dbt build"]
        lines.append(
            f"| {customers:,} | {rows_read:,} | {events:,} | {g[0]:.1f} | {g[1]:.2f} | {lo[0]:.1f} | "
            f"{lo[1]:.2f} | {b[0]:.1f} | {b[1]:.2f} |"
        )
    largest = rows[-1]
    met = largest[1]["generate"][0] <= TARGET_GENERATION_SECONDS and largest[1]["generate"][1] <= TARGET_GENERATION_GB
    lines += ["", f"Generation target at {largest[0]:,} customers: {'met' if met else 'MISSED'}.", ""]
    write_section("foundation", "\n".join(lines))
    print("wrote bench/results.md")


if __name__ == "__main__":
    main()
