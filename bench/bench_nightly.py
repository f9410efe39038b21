"""Benchmark the whole nightly run, every stage, training included, at several sizes.

For each size: generate `--days` of landing data for that many customers, then run the nightly
DAG's stages for the last day in DAG order, each in its own process as an Airflow worker runs a
task (the registry ml.orchestration.stages, whose functions the tasks call). The scoring shards run
`--workers` at a time, as
that many worker slots would. Wall time and peak memory (max RSS) per stage go to
bench/results.md, with each stage's growth exponent between sizes (time ~ customers^k).

Results are kept per size in bench/.work/nightly.json, so a long size can run on its own:
    python bench/bench_nightly.py --customers 10000 100000
    python bench/bench_nightly.py --customers 1000000     # adds to the table
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import os
import shutil
import sys
import time

from common import REPO, WORK, check_exit, machine, run_stage, start_process, stores_env, write_section

sys.path.insert(0, str(REPO))
from ml.orchestration.config import load_config
from ml.orchestration.stages import STAGES as REGISTRY

END = dt.date(2026, 10, 31)
STORE = WORK / "nightly.json"
TARGETS_MINUTES = {100_000: 15, 1_000_000: 90}
TARGET_MEMORY_GB = 16
# (stage name in the table, the call of ml.orchestration.stages that runs it): the sharded stages run
# plan, every shard and merge as separate processes, as Airflow's workers do.
STAGES = [
    (stage.name, ("plan_shards", "score_one_shard", "merge_shards") if stage.shards else "run_stage")
    for stage in REGISTRY
]


def stage_command(name: str, function: str, ds: str, *arguments: object) -> list[str]:
    """A process that runs one call of ml.orchestration.stages for ds, with the configuration loaded
    there, as a DAG task does: run_stage (a whole stage) or plan_shards, score_one_shard, merge_shards."""
    call = ", ".join(["day", "config", "current", *(repr(a) for a in arguments)])
    if function == "run_stage":
        call = "current, day, config"
    code = (
        "from ml.dates import as_ds; from ml.orchestration import stages; "
        "from ml.orchestration.config import load_config; "
        f"day, config, current = as_ds({ds!r}), load_config(), stages.stage({name!r}); "
        f"stages.{function}({call})"
    )
    return [sys.executable, "-c", code]


def run_parallel(commands: list[list[str]], env: dict[str, str], workers: int) -> tuple[float, float]:
    """Run commands `workers` at a time; (wall seconds from first start to last end, largest peak GB)."""
    started, pending, running, peak = time.perf_counter(), list(commands), {}, 0.0
    while pending or running:
        while pending and len(running) < workers:
            command = pending.pop(0)
            process = start_process(command, env)
            running[process.pid] = (process, command)
        pid, status, usage = os.wait4(-1, 0)
        process, command = running.pop(pid)
        check_exit(command, status, process)
        peak = max(peak, usage.ru_maxrss / 1024**2)
    return time.perf_counter() - started, peak


def run_size(customers: int, days: int, workers: int, keep: bool, compare_workers: bool, save) -> dict[str, object]:
    """Run every stage for one size; `save(result)` after each stage, so a run stopped midway
    still leaves the stages it measured (marked incomplete)."""
    data_dir = WORK / f"nightly_c{customers}"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = stores_env(data_dir)
    ds = END.isoformat()
    shards = load_config().scoring.shards
    generate = [sys.executable, "-m", "ml", "synthetic", "--customers", str(customers), "--days", str(days)]
    generate += ["--end-date", ds, "--out", str(data_dir / "landing")]
    result: dict[str, object] = {
        "duckdb_memory_limit": os.environ.get("PZ_DUCKDB_MEMORY_LIMIT", "8GB"),
        "customers": customers,
        "days": days,
        "workers": workers,
        "shards": shards,
        "incomplete": True,
    }
    result["generate"] = run_stage(generate, env)
    print(f"{customers:>9,} generate {result['generate'][0]:8.1f} s {result['generate'][1]:6.2f} GB", flush=True)
    result["stages"] = {}
    try:
        time_stages(ds, env, workers, compare_workers, result["stages"], lambda: save(result), label=f"{customers:>9,}")
        result.pop("incomplete")
    except RuntimeError as error:
        result["failed"] = failure_summary(str(error))
        print(result["failed"], flush=True)
    if not keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


def time_stages(ds: str, env: dict[str, str], workers: int, compare_workers: bool, stages: dict, saved, label: str):
    """Run every stage of the night for `ds` in DAG order, each in its own process; wall seconds and
    peak GB per stage into `stages`, `saved()` after each. Raises RuntimeError when a stage fails."""
    shards = load_config().scoring.shards
    for name, function in STAGES:
        if isinstance(function, tuple):
            plan, shard, merge = function
            seconds, peak = run_stage(stage_command(name, plan, ds), env)
            shard_commands = [stage_command(name, shard, ds, number, shards) for number in range(shards)]
            shard_seconds, shard_peak = run_parallel(shard_commands, env, workers)
            merge_seconds, merge_peak = run_stage(stage_command(name, merge, ds, shards), env)
            stages[name] = [seconds + shard_seconds + merge_seconds, max(peak, shard_peak, merge_peak)]
            stages[f"{name}: shards"] = [shard_seconds, shard_peak]
            if compare_workers and workers > 1:
                # The same shards again, one at a time (one worker slot): what more workers buy.
                run_stage(stage_command(name, plan, ds), env)
                stages[f"{name}: shards, 1 worker"] = list(run_parallel(shard_commands, env, 1))
                run_stage(stage_command(name, merge, ds, shards), env)
        else:
            stages[name] = list(run_stage(stage_command(name, function, ds), env))
        seconds, gb = stages[name]
        print(f"{label} {name:<24} {seconds:8.1f} s {gb:6.2f} GB", flush=True)
        saved()


def failure_summary(error: str) -> str:
    """The failed stage and the error's first lines that say what went wrong, on one line."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    stage = lines[0].split(";")[0].split("import ")[-1] if lines else "a stage"
    killed = lines[0].split("failed, ", 1)[1].rstrip(":") if lines and "failed, killed" in lines[0] else None
    reasons = [line for line in lines[1:] if "Error" in line][:3]
    return f"`{stage}`: " + " ".join(([killed] if killed else []) + reasons)[:600]


def exponent(small: dict, large: dict, stage: str) -> str:
    a, b = small["stages"].get(stage), large["stages"].get(stage)
    if not a or not b:
        return ""
    return f"{math.log(b[0] / a[0]) / math.log(large['customers'] / small['customers']):.2f}"


def report(results: list[dict]) -> str:
    results = sorted(results, key=lambda r: r["customers"])
    complete = [r for r in results if not r.get("incomplete") and not r.get("failed")]
    sizes = [r["customers"] for r in results]
    names = [name for name, _ in STAGES]
    for stage in ("score_recommendations", "score_propensity"):
        at = names.index(stage) + 1
        extra = [f"{stage}: shards"]
        if any(f"{stage}: shards, 1 worker" in r["stages"] for r in results):
            extra.append(f"{stage}: shards, 1 worker")
        names[at:at] = extra
    header = "| stage | " + " | ".join(f"{n:,} s | GB" for n in sizes)
    pairs = list(itertools.pairwise(results))
    header += "".join(f" | k {a['customers'] // 1000}k→{b['customers'] // 1000}k" for a, b in pairs) + " |"
    lines = [header, "|---|" + "---:|---:|" * len(sizes) + "---:|" * len(pairs)]
    for name in names:
        cells = []
        for result in results:
            value = result["stages"].get(name)
            cells.append(f"{value[0]:.1f} | {value[1]:.2f}" if value else "– | –")
        cells += [exponent(a, b, name) for a, b in pairs]
        label = f"&nbsp;&nbsp;{name.split(': ')[1]}" if ": " in name else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    totals = []
    for result in results:
        whole = [v for name, v in result["stages"].items() if ": " not in name]
        seconds, peak = sum(v[0] for v in whole), max((v[1] for v in whole), default=0)
        result["total"] = [seconds, peak]
        finished = result in complete
        totals.append(f"**{seconds / 60:.1f} min** | **{peak:.2f}**" if finished else "incomplete | –")
    total_exponents = []
    for a, b in pairs:
        if a in complete and b in complete:
            k = math.log(b["total"][0] / a["total"][0]) / math.log(b["customers"] / a["customers"])
            total_exponents.append(f"{k:.2f}")
        else:
            total_exponents.append("")
    lines.append("| **nightly run** | " + " | ".join(totals) + " | " + " | ".join(total_exponents) + " |")
    verdicts = []
    for result in results:
        target = TARGETS_MINUTES.get(result["customers"])
        minutes, peak = result["total"][0] / 60, result["total"][1]
        if result.get("failed"):
            verdicts.append(
                f"- {result['customers']:,} customers: FAILED at {result['failed'].rstrip('. ')}. "
                "The stages before it were measured (table); the rest did not run."
            )
        elif result.get("incomplete"):
            verdicts.append(
                f"- {result['customers']:,} customers: INCOMPLETE, stopped after {len(result['stages'])} rows "
                "of the table above; the stages shown were measured, the rest were not run."
            )
        elif target:
            met = minutes <= target and (result["customers"] < 1_000_000 or peak <= TARGET_MEMORY_GB)
            verdicts.append(
                f"- {result['customers']:,} customers: {minutes:.1f} min, peak {peak:.2f} GB against "
                f"{target} min{' and 16 GB' if result['customers'] >= 1_000_000 else ''}: {'met' if met else 'MISSED'}."
            )
    measured = {r["customers"] for r in complete}
    if len(complete) >= 2:
        small, large = complete[-2], complete[-1]
        for size, target in TARGETS_MINUTES.items():
            if size in measured:
                continue
            # Per stage: its time where a stopped run at this size measured it, otherwise its time at
            # the largest complete size times (size ratio)^(its own exponent, at least 0).
            stopped = next((r["stages"] for r in results if r["customers"] == size), {})
            names = [n for n in large["stages"] if ": " not in n]
            projected = 0.0
            for name in names:
                k = max(float(exponent(small, large, name) or 0), 0.0)
                projected += (
                    stopped[name][0] if name in stopped else large["stages"][name][0] * (size / large["customers"]) ** k
                )
            ran = sum(name in stopped for name in names)
            verdicts.append(
                f"- {size:,} customers: no complete night measured. The {ran} stages that ran as measured, the "
                f"other {len(names) - ran} extrapolated from {small['customers']:,} and {large['customers']:,}: "
                f"about {projected / 60:.0f} min against the target of {target} min; an estimate, not a result."
            )
    generate = ", ".join(f"{r['customers']:,}: {r['generate'][0]:.0f} s" for r in results)
    return "\n".join(
        [
            "## The whole nightly run at 10k, 100k and 1M customers",
            "",
            f"Run {dt.date.today().isoformat()} with `python bench/bench_nightly.py` on {machine()}.",
            f"{results[0]['days']} days of generated history; ds {END}; DuckDB memory limit "
            f"{', '.join(sorted({r.get('duckdb_memory_limit', '8GB') for r in results}))}. "
            "Every stage of the nightly DAG for one ds, "
            "each in its own process (as a worker runs a task), in DAG order on one machine; the "
            f"{results[0]['shards']} scoring shards run {results[0]['workers']} at a time (2 worker slots). "
            "Airflow's own scheduling overhead (a few seconds a task) is not included. Generating the data "
            f"is not part of the night ({generate}). k is the growth exponent of the stage's time "
            "between two sizes (time ~ customers^k; 1 is linear).",
            "",
            *lines,
            "",
            *verdicts,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--workers", type=int, default=2, help="scoring shards run this many at a time")
    parser.add_argument("--keep", action="store_true", help="keep the generated data and warehouse")
    parser.add_argument(
        "--duckdb-memory-limit",
        default=os.environ.get("PZ_DUCKDB_MEMORY_LIMIT", "8GB"),
        help="DuckDB's cap during the dbt builds (PZ_DUCKDB_MEMORY_LIMIT); 1M customers need about 14GB",
    )
    parser.add_argument(
        "--compare-workers", action="store_true", help="also run the scoring shards one at a time (not in the total)"
    )
    args = parser.parse_args()
    os.environ["PZ_DUCKDB_MEMORY_LIMIT"] = args.duckdb_memory_limit
    stored = {r["customers"]: r for r in json.loads(STORE.read_text())} if STORE.exists() else {}

    def save(result: dict[str, object]) -> None:
        stored[result["customers"]] = result
        WORK.mkdir(parents=True, exist_ok=True)
        STORE.write_text(json.dumps(list(stored.values()), indent=1))
        write_section("nightly", report(list(stored.values())))

    for customers in args.customers:
        save(run_size(customers, args.days, args.workers, args.keep, args.compare_workers, save))
    print("wrote bench/results.md")


if __name__ == "__main__":
    main()
