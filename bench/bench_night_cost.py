"""Benchmark what a steady night costs as history grows: the same customers, more days behind them.

For each `--days`: generate that much history for `--customers`, run the whole night for the day
before the last (not timed: it builds what a warehouse in service already holds), then time every
stage of the night for the last day, each in its own process as a worker runs it (the stages of
bench_nightly.py). A night that costs what the new day costs takes as long at 730 days as at 180.
Usage: python bench/bench_night_cost.py [--customers 100000] [--days 180 730]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys

from bench_nightly import END, STAGES, stage_command, time_stages
from common import WORK, machine, run_stage, stores_env, write_section

TARGET_RATIO = 1.25  # the longest history's night against the shortest's
TARGET_CUSTOMERS = 100_000


def run_history(customers: int, days: int, workers: int) -> dict[str, object]:
    data_dir = WORK / f"night_cost_c{customers}_d{days}"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = stores_env(data_dir)
    ds, previous = END.isoformat(), (END - dt.timedelta(days=1)).isoformat()
    generate = [sys.executable, "-m", "ml.synthetic", "--customers", str(customers), "--days", str(days)]
    generate += ["--end-date", ds, "--out", str(data_dir / "landing")]
    result: dict[str, object] = {"customers": customers, "days": days, "stages": {}}
    result["generate"] = run_stage(generate, env)
    result["previous night"] = run_stage([sys.executable, "-m", "ml.orchestration.pipeline", "--ds", previous], env)
    print(f"{days:>4} days: previous night {result['previous night'][0]:8.1f} s", flush=True)
    time_stages(ds, env, workers, False, result["stages"], lambda: None, label=f"{days:>4} days")
    result["decisions"] = training_decisions(data_dir, ds)
    # Whether the night's propensity rows changed depends on the calendar and the history (a window
    # that drops its oldest Sunday), so the two timed nights may differ: one retrains, one keeps the
    # last version. Time a retraining train_propensity at every length as well, like for like: the
    # fingerprint of the last version before ds is removed, so the stage cannot reuse it.
    forget_last_propensity_fingerprint(data_dir, ds)
    result["train_propensity, retraining"] = run_stage(stage_command("train_propensity", "run", ds), env)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, nargs="+", default=[180, 730])
    parser.add_argument("--workers", type=int, default=2, help="scoring shards run this many at a time")
    args = parser.parse_args()
    results = [run_history(args.customers, days, args.workers) for days in sorted(args.days)]
    write_section("night_cost", report(results, args.workers))
    print("wrote bench/results.md")


if __name__ == "__main__":
    main()
