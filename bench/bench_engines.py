"""Benchmark the same night on both warehouse engines: DuckDB (embedded) and Spark (a local session).

One data set (`--customers`, `--days`) is generated once; each engine gets its own data dir with the
same landing files, runs the whole night for the day before the last (not timed: what a warehouse in
service already holds), then every stage of the last night is timed in its own process, as a worker
runs it (the stages of bench_nightly.py), with `PZ_WAREHOUSE_ENGINE` set. Peak memory is the stage
process tree's, sampled (on Spark the driver's JVM is a child of the stage's Python process).
Usage: python bench/bench_engines.py [--customers 100000] [--days 90]
An engine already measured at that size is reused from bench/.work/engines_c{N}_d{D}_{engine}.json:
delete that file to measure it again after a change.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys

from bench_nightly import END, STAGES, time_stages
from common import WORK, machine, run_stage, stores_env, write_section

ENGINES = ("duckdb", "spark")
SPARK_DRIVER_MEMORY = "8g"


def run_engine(landing, customers: int, days: int, engine: str, workers: int) -> dict[str, object]:
    data_dir = WORK / f"engines_c{customers}_d{days}_{engine}"
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(landing, data_dir / "landing")
    env = {**stores_env(data_dir), "PZ_WAREHOUSE_ENGINE": engine}
    if engine == "spark":
        # The local session's executors live in the driver: give it what DuckDB may use on this machine.
        env["PZ_SPARK_DRIVER_MEMORY"] = SPARK_DRIVER_MEMORY
    previous = (END - dt.timedelta(days=1)).isoformat()
    result: dict[str, object] = {"stages": {}}
    result["previous night"] = run_stage([sys.executable, "-m", "ml", "pipeline", "--ds", previous], env)
    print(f"{engine}: previous night {result['previous night'][0]:8.1f} s", flush=True)
    time_stages(END.isoformat(), env, workers, False, result["stages"], lambda: None, label=engine)
    return result


def report(results: dict[str, dict], customers: int, days: int, workers: int) -> str:
    names = [name for name, _ in STAGES]
    lines = [
        f"## The same night on DuckDB and on Spark ({customers:,} customers, {days} days)",
        "",
        f"Machine: {machine()}. `python bench/bench_engines.py --customers {customers} --days {days}`: "
        f"the night of {END} after the night before it, each stage in its own process ({workers} scoring "
        "workers), `PZ_WAREHOUSE_ENGINE=duckdb` against `spark` (a local session, `local[2]`, "
        f"driver memory {SPARK_DRIVER_MEMORY}, the embedded metastore).",
        "",
        "| stage | DuckDB s | DuckDB GB | Spark s | Spark GB | Spark / DuckDB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    totals = {engine: 0.0 for engine in ENGINES}
    for name in names:
        duck, spark = results["duckdb"]["stages"][name], results["spark"]["stages"][name]
        totals["duckdb"] += duck[0]
        totals["spark"] += spark[0]
        lines.append(
            f"| {name} | {duck[0]:.1f} | {duck[1]:.2f} | {spark[0]:.1f} | {spark[1]:.2f} | {spark[0] / duck[0]:.1f}x |"
        )
    lines.append(
        f"| **night** | **{totals['duckdb']:.1f}** | | **{totals['spark']:.1f}** | | "
        f"**{totals['spark'] / totals['duckdb']:.1f}x** |"
    )
    previous = {engine: results[engine]["previous night"][0] for engine in ENGINES}
    lines += [
        "",
        f"The night before (untimed per stage, one process): DuckDB {previous['duckdb']:.0f} s, "
        f"Spark {previous['spark']:.0f} s.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    landing = WORK / f"engines_c{args.customers}_d{args.days}_landing"
    if not landing.exists():
        generate = [sys.executable, "-m", "ml", "synthetic", "--customers", str(args.customers)]
        generate += ["--days", str(args.days), "--end-date", END.isoformat(), "--out", str(landing)]
        run_stage(generate, stores_env(WORK / "engines_generate"))
    # Each engine's figures are kept as soon as it finishes: an engine measured before is not run
    # again (delete its json to measure it anew), so a long Spark half can be rerun on its own.
    results = {}
    for engine in ENGINES:
        saved = WORK / f"engines_c{args.customers}_d{args.days}_{engine}.json"
        if not saved.exists():
            saved.write_text(json.dumps(run_engine(landing, args.customers, args.days, engine, args.workers), indent=1))
        results[engine] = json.loads(saved.read_text())
    write_section(f"engines_c{args.customers}_d{args.days}", report(results, args.customers, args.days, args.workers))


if __name__ == "__main__":
    main()
