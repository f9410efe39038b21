"""Benchmark the nightly incremental build against a full refresh.

Generates `--customers` over `--days` + 1 days, builds the day before the last with
--full-refresh (all history), loads the landing again (nothing new arrived: the ledger skips every
file), then builds the last day incrementally, as a night would. Reports
the whole dbt build (staging included) and the metrics layer alone (intermediate and marts).
Usage: python bench/bench_metrics.py [--customers 100000] [--days 365]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys

from common import WORK, machine, run_stage, write_section

END = dt.date(2026, 10, 31)
TARGET_RATIO = 0.20


def dbt_command(ds: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ml", "dbt", "build", "--ds", ds, *extra]


INCREMENTAL_FACTS = {"fct_cx_responses_daily", "fct_customer_events_daily"}
LAYERS = ("staging", "incremental daily facts", "other marts", "tests")


def dbt_node_seconds(data_dir) -> dict[str, float]:
    """Execution time of each dbt node (model, test) of the last invocation, from run_results.json."""
    results = json.loads((data_dir / "dbt" / "target" / "run_results.json").read_text())
    return {result["unique_id"]: result["execution_time"] for result in results["results"]}


def layer_of(unique_id: str) -> str:
    resource_type, _, name = unique_id.split(".", 2)
    if resource_type != "model":
        return "tests"
    if name.startswith(("stg_", "quarantine_", "landing_reconciliation")):
        return "staging"
    return "incremental daily facts" if name in INCREMENTAL_FACTS else "other marts"


def seconds_by_layer(nodes: dict[str, float]) -> dict[str, float]:
    totals = dict.fromkeys(LAYERS, 0.0)
    for unique_id, seconds in nodes.items():
        totals[layer_of(unique_id)] += seconds
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--keep", action="store_true", help="keep the generated data and warehouse")
    args = parser.parse_args()
    data_dir = WORK / f"metrics_c{args.customers}"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {**os.environ, "PZ_DATA_DIR": str(data_dir)}
    previous, new_day = (END - dt.timedelta(days=1)).isoformat(), END.isoformat()
    metrics_layer = ("--select", "intermediate", "marts")

    steps = [
        (
            "generate",
            [
                sys.executable,
                "-m",
                "ml",
                "synthetic",
                "--customers",
                str(args.customers),
                "--days",
                str(args.days + 1),
                "--end-date",
                new_day,
            ],
        ),
        ("load landing", [sys.executable, "-m", "ml", "landing"]),
        ("dbt build, full refresh", dbt_command(previous, "--full-refresh")),
        ("load landing, nothing new", [sys.executable, "-m", "ml", "landing"]),
        ("dbt build, incremental new day", dbt_command(new_day)),
        ("metrics layer, full refresh", dbt_command(new_day, *metrics_layer, "--full-refresh")),
        ("metrics layer, incremental", dbt_command(new_day, *metrics_layer)),
    ]
    timings, node_seconds = {}, {}
    for name, command in steps:
        timings[name] = run_stage(command, env)
        print(f"{name:<32} {timings[name][0]:8.1f} s  {timings[name][1]:6.2f} GB", flush=True)
        if name.startswith(("dbt", "metrics")):
            node_seconds[name] = dbt_node_seconds(data_dir)
            top = sorted(node_seconds[name].items(), key=lambda item: -item[1])[:5]
            print("    slowest: " + ", ".join(f"{n.split('.')[-1]} {t:.1f}s" for n, t in top), flush=True)
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)

    whole = timings["dbt build, incremental new day"][0] / timings["dbt build, full refresh"][0]
    layer = timings["metrics layer, incremental"][0] / timings["metrics layer, full refresh"][0]
    full_layers = seconds_by_layer(node_seconds["dbt build, full refresh"])
    nightly_layers = seconds_by_layer(node_seconds["dbt build, incremental new day"])
    facts = nightly_layers["incremental daily facts"] / full_layers["incremental daily facts"]
    staging = nightly_layers["staging"] / full_layers["staging"]

    def verdict(ratio: float) -> str:
        return "met" if ratio <= TARGET_RATIO else "MISSED"

    lines = [
        "## Metrics layer: nightly incremental against full refresh",
        "",
        f"Run {dt.date.today().isoformat()} with `python bench/bench_metrics.py` on {machine()}.",
        f"{args.customers:,} customers, {args.days} days of history plus one new day. Each step is its own process;",
        "wall time includes about 4 s of dbt start-up and parsing per invocation (a new `ds` var forces a reparse).",
        f"Target: the incremental run of one new day takes at most {TARGET_RATIO:.0%} of a full refresh.",
        "",
        "| step | wall s | peak GB |",
        "|---|---:|---:|",
        *[f"| {name} | {seconds:.1f} | {gb:.2f} |" for name, (seconds, gb) in timings.items()],
        "",
        "dbt execution time by layer (sum of node times from run_results.json, seconds):",
        "",
        "| layer | full refresh | incremental new day | ratio |",
        "|---|---:|---:|---:|",
        *[
            f"| {name} | {full_layers[name]:.1f} | {nightly_layers[name]:.1f} | "
            f"{nightly_layers[name] / full_layers[name]:.0%} |"
            for name in LAYERS
        ],
        "",
        f"- Incremental daily facts (fct_cx_responses_daily, fct_customer_events_daily): {facts:.0%} of their full "
        f"refresh ({verdict(facts)}).",
        f"- Staging: {staging:.0%} of its full refresh. Rows are parsed and checked once, in the night their file "
        "arrives (stg_*__checked); every row still gets its status for ds (stg_*__classified: a pass over all "
        "rows), and only rows whose status changed are written.",
        f"- Metrics layer alone (intermediate + marts + their tests), wall time: {layer:.0%} ({verdict(layer)}): "
        "dbt start-up and the per-customer snapshots (customer_360, int_orders_sequenced, cohorts) do not shrink "
        "with one day; customer_features_daily builds ds and the grid dates it lacks (one or two), not the window.",
        f"- Whole dbt build, wall time: {whole:.0%} ({verdict(whole)}). What does not shrink with one day: dbt's "
        "start-up and parse (a new ds var reparses the project), the status pass over every landing row, the data "
        "tests over whole tables, and the per-customer snapshots.",
    ]
    write_section("metrics", "\n".join(lines))
    print(f"facts {facts:.2f}, metrics layer {layer:.2f}, whole build {whole:.2f}; wrote bench/results.md")


if __name__ == "__main__":
    main()
