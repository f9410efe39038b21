"""Benchmark what a steady night costs as history grows: the same customers, more days behind them.

For each `--days`: generate that much history for `--customers`, run the whole night for the day
before the last (not timed: it builds what a warehouse in service already holds), then time every
stage of the night for the last day, each in its own process as a worker runs it (the stages of
bench_nightly.py). A night that costs what the new day costs takes as long at 730 days as at 180.
Usage: python bench/bench_night_cost.py [--customers 100000] [--days 180 730]

At 1M customers (one length): python bench/bench_night_cost.py --customers 1000000 --days 180
--first-night-memory-limit 14GB. The night before is then timed stage by stage too: it is the night
with the full search (and the warehouse's first full build), reported beside the steady night. Only
that first build from an empty warehouse gets the raised DuckDB cap; the steady night runs with the
default.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys

from bench_nightly import END, STAGES, stage_command, time_stages
from common import WORK, machine, run_stage, stores_env, write_section

TARGET_RATIO = 1.25  # the longest history's night against the shortest's
TARGET_CUSTOMERS = 100_000
LARGE_CUSTOMERS = 1_000_000  # the steady night's targets at this size: minutes, GB, DuckDB's default cap
LARGE_TARGET_MINUTES, LARGE_TARGET_GB = 15, 8  # issue 44: the steady night at 1M


def run_history(customers: int, days: int, workers: int, first_night_memory_limit: str | None) -> dict[str, object]:
    data_dir = WORK / f"night_cost_c{customers}_d{days}"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = stores_env(data_dir)
    ds, previous = END.isoformat(), (END - dt.timedelta(days=1)).isoformat()
    generate = [sys.executable, "-m", "ml", "synthetic", "--customers", str(customers), "--days", str(days)]
    generate += ["--end-date", ds, "--out", str(data_dir / "landing")]
    result: dict[str, object] = {"customers": customers, "days": days, "stages": {}}
    result["generate"] = run_stage(generate, env)
    if first_night_memory_limit:
        # The night before, stage by stage: the full search night, on a warehouse built from empty.
        first_env = {**env, "PZ_DUCKDB_MEMORY_LIMIT": first_night_memory_limit}
        result["previous stages"] = {}
        time_stages(previous, first_env, workers, False, result["previous stages"], lambda: None, label="search night")
        result["previous night"] = [sum(v[0] for v in result["previous stages"].values()), 0.0]
    else:
        command = [sys.executable, "-m", "ml", "pipeline", "--ds", previous]
        result["previous night"] = run_stage(command, env)
    print(f"{days:>4} days: previous night {result['previous night'][0]:8.1f} s", flush=True)
    time_stages(ds, env, workers, False, result["stages"], lambda: None, label=f"{days:>4} days")
    result["decisions"] = training_decisions(data_dir, ds)
    # Whether the night's propensity rows changed depends on the calendar and the history (a window
    # that drops its oldest Sunday), so the two timed nights may differ: one retrains, one keeps the
    # last version. Time a retraining train_propensity at every length as well, like for like: the
    # fingerprint of the last version before ds is removed, so the stage cannot reuse it.
    forget_last_propensity_fingerprint(data_dir, ds)
    result["train_propensity, retraining"] = run_stage(stage_command("train_propensity", "run_stage", ds), env)
    print(f"{days:>4} days train_propensity, retraining {result['train_propensity, retraining'][0]:8.1f} s", flush=True)
    shutil.rmtree(data_dir, ignore_errors=True)
    return result


def forget_last_propensity_fingerprint(data_dir, ds: str) -> None:
    from mlflow import MlflowClient

    from ml.mlops.registry import last_version_before

    client = MlflowClient(f"sqlite:///{data_dir / 'mlflow.db'}")
    last = last_version_before(client, "propensity", dt.date.fromisoformat(ds))
    if last is not None:
        client.delete_tag(last.run_id, "training_fingerprint")


def training_decisions(data_dir, ds: str) -> str:
    """What the timed night's training did: the recommender's search plan and warm start, and
    whether propensity trained or kept its last version (they set what train_* cost)."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{data_dir / 'mlflow.db'}")
    said = []
    for model_name, keys in (("recommender", ("search_plan", "warm_start")), ("propensity", ("reuse_reason",))):
        experiment = client.get_experiment_by_name(model_name)
        runs = client.search_runs([experiment.experiment_id], f"tags.ds = '{ds}'") if experiment else []
        tags = runs[0].data.tags if runs else {}
        found = [f"{key}: {tags[key]}" for key in keys if key in tags]
        params = runs[0].data.params if runs else {}
        # What a retraining night's cost follows: the rows of the window's cutoffs.
        found += [f"{key} {params[key]}" for key in ("all_rows", "training_customers") if key in params]
        said.append(f"{model_name}: " + ("; ".join(found) or ("trained" if runs else "no run")))
    return " | ".join(said)


def report(results: list[dict], workers: int) -> str:
    shortest, longest = results[0], results[-1]
    header = "| stage | " + " | ".join(f"{r['days']} days s | GB" for r in results) + " | ratio |"
    lines = [header, "|---|" + "---:|---:|" * len(results) + "---:|"]
    names = [name for name, _ in STAGES]
    for name in names:
        cells = [f"{r['stages'][name][0]:.1f} | {r['stages'][name][1]:.2f}" for r in results]
        ratio = longest["stages"][name][0] / shortest["stages"][name][0]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    totals = {r["days"]: sum(r["stages"][name][0] for name in names) for r in results}
    peaks = {r["days"]: max(r["stages"][name][1] for name in names) for r in results}
    cells = [f"**{totals[r['days']] / 60:.1f} min** | **{peaks[r['days']]:.2f}**" for r in results]
    ratio = totals[longest["days"]] / totals[shortest["days"]]
    lines.append("| **night** | " + " | ".join(cells) + f" | **{ratio:.2f}** |")
    retrain = "train_propensity, retraining"
    cells = [f"{r[retrain][0]:.1f} | {r[retrain][1]:.2f}" for r in results]
    lines.append(f"| {retrain} | " + " | ".join(cells) + f" | {longest[retrain][0] / shortest[retrain][0]:.2f} |")
    like_for_like = {r["days"]: totals[r["days"]] - r["stages"]["train_propensity"][0] + r[retrain][0] for r in results}
    cells = [f"{like_for_like[r['days']] / 60:.1f} min | " for r in results]
    like_ratio = like_for_like[longest["days"]] / like_for_like[shortest["days"]]
    lines.append("| night, propensity retraining at both | " + " | ".join(cells) + f" | {like_ratio:.2f} |")
    previous = ", ".join(f"{r['days']} days: {r['previous night'][0] / 60:.1f} min" for r in results)
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    if shortest["customers"] < TARGET_CUSTOMERS:
        verdict = f"an indication only: the target is set at {TARGET_CUSTOMERS:,} customers"
    return "\n".join(
        [
            "## What a night costs as history grows",
            "",
            f"Run {dt.date.today().isoformat()} with `python bench/bench_night_cost.py` on {machine()}.",
            f"{shortest['customers']:,} customers; the night of {END} after the night before it (not timed: "
            f"{previous}, from an empty warehouse), each stage in its own process, the scoring shards "
            f"{workers} at a time. Target: the night with {longest['days']} days of history at most "
            f"{TARGET_RATIO}x the night with {shortest['days']}.",
            "",
            *lines,
            "",
            f"- {longest['days']} days against {shortest['days']}: {ratio:.2f}x ({verdict}); with a retraining "
            f"`train_propensity` at both lengths (timed again after the night, the last version's fingerprint "
            f"removed so it cannot be reused): {like_ratio:.2f}x.",
            *(f"- What the timed night's training did, {r['days']} days: {r['decisions']}" for r in results),
        ]
    )


def report_large(result: dict, workers: int) -> str:
    """The steady night at 1M customers beside the search night before it, per stage."""
    names = [name for name, _ in STAGES]
    steady, search = result["stages"], result["previous stages"]
    lines = ["| stage | steady night s | GB | search night s | GB |", "|---|---:|---:|---:|---:|"]
    for name in names:
        cells = [f"{value:.1f} | {gb:.2f}" for value, gb in (steady[name], search[name])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    minutes = sum(steady[name][0] for name in names) / 60
    peak = max(steady[name][1] for name in names)
    search_minutes, search_peak = sum(search[n][0] for n in names) / 60, max(search[n][1] for n in names)
    cells = [f"**{m:.1f} min** | **{gb:.2f}**" for m, gb in ((minutes, peak), (search_minutes, search_peak))]
    lines.append("| **night** | " + " | ".join(cells) + " |")
    retrain = result["train_propensity, retraining"]
    met = minutes <= LARGE_TARGET_MINUTES and peak <= LARGE_TARGET_GB
    return "\n".join(
        [
            f"## The night between searches at {result['customers']:,} customers",
            "",
            f"Run {dt.date.today().isoformat()} with `python bench/bench_night_cost.py --customers "
            f"{result['customers']} --days {result['days']} --first-night-memory-limit ...` on {machine()}.",
            f"{result['days']} days of history; the night of {END} (steady: DuckDB's default cap) after the night "
            f"before it (the search night, from an empty warehouse, DuckDB's cap raised for that first full "
            f"build only), each stage in its own process, the scoring shards {workers} at a time. Target for "
            f"the steady night: at most {LARGE_TARGET_MINUTES} min and {LARGE_TARGET_GB} GB.",
            "",
            *lines,
            "",
            f"- The steady night: {minutes:.1f} min, peak {peak:.2f} GB against {LARGE_TARGET_MINUTES} min and "
            f"{LARGE_TARGET_GB} GB: {'met' if met else 'MISSED'}. The search night before it: "
            f"{search_minutes:.1f} min, peak {search_peak:.2f} GB.",
            f"- A retraining `train_propensity` after the night: {retrain[0]:.1f} s, {retrain[1]:.2f} GB.",
            f"- What the steady night's training did: {result['decisions']}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, nargs="+", default=[180, 730])
    parser.add_argument("--workers", type=int, default=2, help="scoring shards run this many at a time")
    parser.add_argument(
        "--first-night-memory-limit",
        help="time the night before stage by stage, with this DuckDB cap for that first full build (1M: 14GB)",
    )
    args = parser.parse_args()
    limit = args.first_night_memory_limit
    results = [run_history(args.customers, days, args.workers, limit) for days in sorted(args.days)]
    # The raw figures too, so a report can be written again without rerunning hours of nights.
    (WORK / f"night_cost_c{args.customers}.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    if args.customers >= LARGE_CUSTOMERS:
        for result in results:
            section = f"night_cost_{args.customers // 1_000_000}m_{result['days']}d"
            write_section(section, report_large(result, args.workers))
    else:
        write_section("night_cost", report(results, args.workers))
    print("wrote bench/results.md")


if __name__ == "__main__":
    main()
